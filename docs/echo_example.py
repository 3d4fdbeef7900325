"""The README's event-driven example: an echo server and a client in one eventer."""

import ulnet

ev = ulnet.Eventer()                      # epoll on Linux, select.poll on MicroPython

server = ulnet.TCP(ev)
server.on_receive = lambda sock: sock.send(sock.get())   # echo what arrives
listener = server.listen(0)               # any free port: listener.local_port

client = ulnet.TCP(ev)
replies = []
client.on_connect = lambda sock: print("connected to", sock.peer_address, sock.peer_port)
client.on_can_send = lambda sock: sock.send(b"hello, ulnet")   # fires once after connect
client.on_receive = lambda sock: replies.append(sock.get())
client.on_error = lambda sock, err: print("error:", err)        # e.g. connection refused

client.connect("127.0.0.1", listener.local_port, timeout_ms=2000)
ev.run_until(lambda: replies, 5000)       # raises ulnet.TimeoutError at the deadline
print("echoed:", replies[0])
client.disconnect()
server.disconnect()
