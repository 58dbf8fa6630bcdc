# A real server's UDP answer for the end-to-end tests and the lab bench: echoes each datagram prefixed with the
# server's name, on ADDRESS (IPv4 or IPv6) and PORT (default 5353).
#   udp_echo.py NAME ADDRESS [PORT]
import socket, sys
name = sys.argv[1].encode()
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[2] else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 5353))
print('echo listening', flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(name + b' ' + data, peer)
