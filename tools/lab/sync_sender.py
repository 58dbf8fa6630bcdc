# A sync master for the lab, written from the kernel's structs (include/net/ip_vs.h, ip_vs_sync.c), apart from udr's
# own encoder: sends one IPVS sync message, version 1, to 224.0.0.81:8848 from ADDRESS (the interface it leaves by),
# or to an IPv6 group when ADDRESS is GROUP%INTERFACE (ff02::81%eth0).
#   sync_sender.py ADDRESS SYNCID ENTRY...      ENTRY = proto,caddr,cport,vaddr,vport,daddr,dport,state,flags,timeout
#   sync_sender.py ADDRESS SYNCID --hostile     a set of malformed messages (bad version, size, syncid, truncation)
# An ENTRY with IPv6 addresses is a struct ip_vs_sync_v6 (type 1, 72 bytes), the others struct ip_vs_sync_v4 (36).
import socket, struct, sys

GROUP, PORT = '224.0.0.81', 8848

def entry(proto, caddr, cport, vaddr, vport, daddr, dport, state, flags, timeout):
    if ':' in caddr:
        addresses = [socket.inet_pton(socket.AF_INET6, a) for a in (caddr, vaddr, daddr)]
        body = struct.pack('!BBHIHHHHII16s16s16s', 1, int(proto), 72, int(flags), int(state), int(cport), int(vport), int(dport),
                           0, int(timeout), *addresses)
        assert len(body) == 72
        return body
    body = struct.pack('!BBHIHHHHII4s4s4s', 0, int(proto), 36, int(flags), int(state), int(cport), int(vport), int(dport),
                       0, int(timeout), socket.inet_aton(caddr), socket.inet_aton(vaddr), socket.inet_aton(daddr))
    assert len(body) == 36
    return body

def message(syncid, entries, version=1, reserved=0, size=None, count=None):
    body = b''.join(entries)
    total = 8 + len(body) if size is None else size
    return struct.pack('!BBHBBH', reserved, syncid, total, len(entries) if count is None else count, version, 0) + body

address, syncid = sys.argv[1], int(sys.argv[2])
if '%' in address:
    GROUP, interface = address.split('%')
    index = socket.if_nametoindex(interface)
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
    destination = (GROUP, PORT, 0, index)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    destination = (GROUP, PORT)
if sys.argv[3:] == ['--hostile']:
    one = entry(6, '198.18.0.1', 41000, '198.18.0.100', 80, '198.18.0.11', 80, 1, 3, 900)
    messages = [message(syncid, [one], version=2), message(syncid, [one], reserved=1), message(syncid + 1, [one]),
                message(syncid, [one], size=20), message(syncid, [one], count=2), b'\x00\x01']
else:
    messages = [message(syncid, [entry(*e.split(',')) for e in sys.argv[3:]])]
for m in messages:
    s.sendto(m, destination)
print('sent %d message(s)' % len(messages), flush=True)
