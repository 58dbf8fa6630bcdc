# A sync backup's ears for the lab: joins 224.0.0.81:8848 on the interface of ADDRESS and prints each datagram as
# "SOURCE HEX", for SECONDS at most (the test decodes them with its own decoder, written from the kernel's structs).
import socket, struct, sys, time
address, seconds = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('224.0.0.81', 8848))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton('224.0.0.81') + socket.inet_aton(address))
print('listening', flush=True)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    s.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        data, peer = s.recvfrom(65535)
    except socket.timeout:
        break
    print('%s %s' % (peer[0], data.hex()), flush=True)
