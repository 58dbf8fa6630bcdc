# For the lab bench's connections per second: connects TARGET PORT for SECONDS (at most 200,000 times), prints the rate.
import socket, sys, time
target, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
n, deadline = 0, time.monotonic() + seconds
start = time.monotonic()
while time.monotonic() < deadline and n < 200000:
    c = socket.create_connection((target, port), timeout=2)
    c.recv(1)
    c.close(); n += 1
print(f"{n / (time.monotonic() - start):.0f}")
