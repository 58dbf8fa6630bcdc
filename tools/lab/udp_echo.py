# A real server's UDP answer for the end-to-end tests: echoes each datagram prefixed with the server's name.
import socket, sys
name = sys.argv[1].encode()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[2], 5353))
print('echo listening', flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(name + b' ' + data, peer)
