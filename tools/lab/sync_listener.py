# A sync backup's ears for the lab: joins 224.0.0.81:8848 (or GROUP, e.g. ff02::81, on the interface eth0) on the
# interface of ADDRESS and prints each datagram as "SOURCE HEX", for SECONDS at most (the test decodes them with its own
# decoder, written from the kernel's structs).
#   sync_listener.py ADDRESS SECONDS [GROUP]
import socket, struct, sys, time
address, seconds = sys.argv[1], float(sys.argv[2])
group = sys.argv[3] if len(sys.argv) > 3 else '224.0.0.81'
if ':' in group:
    index = socket.if_nametoindex('eth0')
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((group, 8848, 0, index))
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, group) + struct.pack('@I', index))
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((group, 8848))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(address))
print('listening', flush=True)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    s.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        data, peer = s.recvfrom(65535)
    except socket.timeout:
        break
    print('%s %s' % (peer[0].split('%')[0], data.hex()), flush=True)
