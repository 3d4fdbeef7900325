from ulnet.tools.cli import main

raise SystemExit(main())
