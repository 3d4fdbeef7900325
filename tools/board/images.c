/* The emulated board's ROMFS images, loaded into a MicroPython unix port binary before its main().

   tools/board/child.py runs a firmware binary (`ulnet board start --firmware PATH`) with this
   library in LD_PRELOAD, compiled for the binary's word size. As the launcher does for the
   unix port inside CPython, it loads two ROMFS images into memory outside MicroPython's heap, as
   a board's flash is mapped: ULNET_BOOT_IMAGE (the board's own code; mounted while it boots)
   and ULNET_FLASH/.romfs (what `ulnet deploy --romfs` writes); it announces them as
   ULNET_FW=address:size and ULNET_ROMFS=address:size, which board_boot.py mounts with
   vfs.VfsRom(uctypes.bytearray_at(address, size)).

   Rules: the images are copies (a deploy rewriting .romfs never changes what runs); without
   its boot image the process ends at once with a clear line, as the launcher does; LD_PRELOAD
   is removed, so programs the board starts (os.system) do not load this. */

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when the image at path is loaded and announced in the variable `name` */
static int load(const char *path, const char *name) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return 0;
    }
    int loaded = 0;
    char *image = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        image = malloc(size);  /* kept for the process's life, as flash is */
        if (image != NULL && fread(image, 1, size, f) == (size_t)size) {
            char text[64];
            snprintf(text, sizeof text, "%lu:%ld", (unsigned long)(size_t)image, size);
            loaded = setenv(name, text, 1) == 0;
        } else {
            free(image);
        }
    }
    fclose(f);
    return loaded;
}

__attribute__((constructor)) static void load_images(void) {
    const char *boot = getenv("ULNET_BOOT_IMAGE");
    const char *flash = getenv("ULNET_FLASH");
    if (boot != NULL && !load(boot, "ULNET_FW")) {
        /* no board without it: exit, the supervisor boots it again */
        fprintf(stderr, "ulnet board: no boot image: %s\n", boot);
        exit(1);
    }
    if (flash != NULL) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/.romfs", flash) < (int)sizeof path) {
            load(path, "ULNET_ROMFS");
        }
    }
    unsetenv("LD_PRELOAD");
}
