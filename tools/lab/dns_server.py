# A real server's DNS answer for the health-check tests: every query gets a response with its ID, QR and RA set, the
# question echoed and the RCODE given (0, NOERROR, unless told), from the address given, on port 53.
import socket, sys
address = sys.argv[1]
rcode = int(sys.argv[2]) if len(sys.argv) > 2 else 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((address, 53))
print('dns listening', flush=True)
while True:
    query, peer = s.recvfrom(512)
    if len(query) < 12:
        continue
    flags = 0x8000 | (query[2] & 0x01) << 8 | 0x0080 | rcode  # QR, RD copied, RA, RCODE
    s.sendto(query[:2] + flags.to_bytes(2, 'big') + query[4:6] + b'\0\0\0\0\0\0' + query[12:], peer)
