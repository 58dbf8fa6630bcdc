# For the lab bench's connections per second: accepts on each port given and closes at once (killed at teardown).
import selectors, socket, sys
selector = selectors.DefaultSelector()
for port in sys.argv[1:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port))); s.listen(1024); s.setblocking(False)
    selector.register(s, selectors.EVENT_READ)
while True:
    for key, _ in selector.select():
        try:
            c, _ = key.fileobj.accept(); c.close()
        except BlockingIOError:
            pass
