# A SYN flood for the lab, as a capture file for tcpreplay: COUNT TCP SYNs from random spoofed sources in SOURCES (a
# lab prefix such as 198.19.128.0/17, which no lab host routes back to) and random ports, to VIP:PORT, in Ethernet
# frames from SRC_MAC to DST_MAC (the balancer's). Valid IPv4 and TCP checksums; source and port drawn afresh for
# every SYN (a seeded generator: the same file every time).
#   syn_flood.py OUT.pcap COUNT SOURCES VIP PORT SRC_MAC DST_MAC
import ipaddress, random, struct, sys

def checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

out, count, sources, vip, port, src_mac, dst_mac = sys.argv[1], int(sys.argv[2]), ipaddress.ip_network(sys.argv[3]), \
    ipaddress.ip_address(sys.argv[4]).packed, int(sys.argv[5]), bytes.fromhex(sys.argv[6].replace(':', '')), bytes.fromhex(sys.argv[7].replace(':', ''))
rng = random.Random(4711)
base = int(sources.network_address)
with open(out, 'wb') as f:
    f.write(struct.pack('<IHHiIII', 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # pcap, microseconds, Ethernet
    for i in range(count):
        source = (base + rng.randrange(1, sources.num_addresses - 1)).to_bytes(4, 'big')
        tcp = struct.pack('!HHIIBBHHH', rng.randrange(1024, 65536), port, rng.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
        tcp = tcp[:16] + struct.pack('!H', checksum(source + vip + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)) + tcp[18:]
        ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0x4000, 64, 6, 0, source, vip)
        ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
        frame = dst_mac + src_mac + b'\x08\x00' + ip + tcp
        f.write(struct.pack('<IIII', i // 1000000, i % 1000000, len(frame), len(frame)) + frame)
print('wrote %d SYNs' % count, flush=True)
