# Floods for the lab, as capture files for tcpreplay: COUNT frames from random sources in SOURCES (a lab prefix: for
# spoofing, one such as 198.19.128.0/17 that no lab host routes back to; a /32 for one real client) and random ports,
# to VIP:PORT, in Ethernet frames from SRC_MAC to DST_MAC (the balancer's). KIND syn: TCP SYNs; udp: UDP datagrams
# with 10 bytes of payload (52-byte frames). Valid IPv4, TCP and UDP checksums; a seeded generator, the same file every time.
#   flood.py OUT.pcap COUNT syn|udp SOURCES VIP PORT SRC_MAC DST_MAC
import ipaddress, random, struct, sys

def checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

out, count, kind, sources, vip, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], ipaddress.ip_network(sys.argv[4]), \
    ipaddress.ip_address(sys.argv[5]).packed, int(sys.argv[6])
src_mac, dst_mac = bytes.fromhex(sys.argv[7].replace(':', '')), bytes.fromhex(sys.argv[8].replace(':', ''))
if kind not in ('syn', 'udp'):
    raise SystemExit('flood.py: KIND is syn or udp')
rng = random.Random(4711)
base = int(sources.network_address)
with open(out, 'wb') as f:
    f.write(struct.pack('<IHHiIII', 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # pcap, microseconds, Ethernet
    for i in range(count):
        source = (base + rng.randrange(sources.num_addresses)).to_bytes(4, 'big')
        if kind == 'syn':
            protocol, l4 = 6, struct.pack('!HHIIBBHHH', rng.randrange(1024, 65536), port, rng.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
            l4 = l4[:16] + struct.pack('!H', checksum(source + vip + struct.pack('!BBH', 0, 6, len(l4)) + l4)) + l4[18:]
        else:
            protocol, l4 = 17, struct.pack('!HHHH', rng.randrange(1024, 65536), port, 18, 0) + b'udr lab flood'[:10]
            l4 = l4[:6] + struct.pack('!H', checksum(source + vip + struct.pack('!BBH', 0, 17, len(l4)) + l4) or 0xFFFF) + l4[8:]
        tcp = l4
        ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0x4000, 64, protocol, 0, source, vip)
        ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
        frame = dst_mac + src_mac + b'\x08\x00' + ip + tcp
        f.write(struct.pack('<IIII', i // 1000000, i % 1000000, len(frame), len(frame)) + frame)
print('wrote %d %s frames' % (count, kind), flush=True)
