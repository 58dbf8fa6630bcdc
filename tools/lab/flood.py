# Floods for the lab, as capture files for tcpreplay: COUNT frames from random sources in SOURCES (a lab prefix: for
# spoofing, one such as 198.19.128.0/17 that no lab host routes back to; a /32 for one real client) and random ports,
# to VIP:PORT, in Ethernet frames from SRC_MAC to DST_MAC (the balancer's). KIND syn: TCP SYNs; udp: UDP datagrams
# with 10 bytes of payload (52-byte frames); storm: malformed frames, eight kinds in turn, each one the balancer must
# drop under its own reason (STORM_REASONS, printed). Valid checksums wherever the kind does not break them; a seeded
# generator, the same file every time. established: COUNT connections, each a SYN and then an ACK (2 × COUNT frames),
# which a DR balancer holds as ESTABLISHED.
#   flood.py OUT.pcap COUNT syn|udp|storm|established SOURCES VIP PORT SRC_MAC DST_MAC
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
if kind not in ('syn', 'udp', 'storm', 'established'):
    raise SystemExit('flood.py: KIND is syn, udp, storm or established')
rng = random.Random(4711)
base = int(sources.network_address)

def ipv4(source, protocol, l4, ident, flags_offset=0x4000, version_ihl=0x45, total=None, ttl=64, good_checksum=True):
    ip = struct.pack('!BBHHHBBH4s4s', version_ihl, 0, 20 + len(l4) if total is None else total, ident, flags_offset, ttl, protocol, 0, source, vip)
    return ip[:10] + struct.pack('!H', checksum(ip) ^ (0 if good_checksum else 0x5555)) + ip[12:] + l4

def tcp(source, sport, flags):
    l4 = struct.pack('!HHIIBBHHH', sport, port, rng.getrandbits(32), rng.getrandbits(32), 5 << 4, flags, 64240, 0, 0)
    return l4[:16] + struct.pack('!H', checksum(source + vip + struct.pack('!BBH', 0, 6, len(l4)) + l4)) + l4[18:]

def udp(source, sport, payload=b'udr lab fl'):
    l4 = struct.pack('!HHHH', sport, port, 8 + len(payload), 0) + payload
    return l4[:6] + struct.pack('!H', checksum(source + vip + struct.pack('!BBH', 0, 17, len(l4)) + l4) or 0xFFFF) + l4[8:]

def icmp_unreachable(source):
    # About a datagram VIP:PORT -> source:sport that the balancer never saw: its quoted header and 8 bytes.
    quoted = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 28, 1, 0, 64, 17, 0, vip, source)
    quoted = quoted[:10] + struct.pack('!H', checksum(quoted)) + quoted[12:] + struct.pack('!HHHH', port, rng.randrange(1024, 65536), 8, 0)
    message = struct.pack('!BBHI', 3, 3, 0, 0) + quoted
    return message[:2] + struct.pack('!H', checksum(message)) + message[4:]

# storm: the reason each kind must be dropped under, in the order they are written.
STORM_REASONS = ['ip-checksum-invalid', 'ip-header-length-invalid', 'ip-total-length-invalid', 'ip-version-invalid',
                 'fragment-without-first', 'tcp-not-syn', 'icmp-error-not-tracked', 'arp-malformed']

def storm(i, source):
    sport = rng.randrange(1024, 65536)
    k = i % len(STORM_REASONS)
    if k == 0:
        return b'\x08\x00' + ipv4(source, 17, udp(source, sport), i & 0xFFFF, good_checksum=False)
    if k == 1:
        return b'\x08\x00' + ipv4(source, 17, udp(source, sport), i & 0xFFFF, version_ihl=0x44)
    if k == 2:
        return b'\x08\x00' + ipv4(source, 17, udp(source, sport), i & 0xFFFF, total=1400)
    if k == 3:
        return b'\x08\x00' + ipv4(source, 17, udp(source, sport), i & 0xFFFF, version_ihl=0x65)
    if k == 4:
        return b'\x08\x00' + ipv4(source, 17, b'later fragment, no first', i & 0xFFFF, flags_offset=100)
    if k == 5:
        return b'\x08\x00' + ipv4(source, 6, tcp(source, sport, 0x10), i & 0xFFFF)
    if k == 6:
        return b'\x08\x00' + ipv4(source, 1, icmp_unreachable(source), i & 0xFFFF)
    # An ARP request cut after its hardware addresses.
    return b'\x08\x06' + struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) + src_mac

with open(out, 'wb') as f:
    f.write(struct.pack('<IHHiIII', 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # pcap, microseconds, Ethernet
    written = 0
    for i in range(count):
        source = (base + rng.randrange(sources.num_addresses)).to_bytes(4, 'big')
        sport = rng.randrange(1024, 65536)
        if kind == 'established':
            for flags in (0x02, 0x10):
                frame = dst_mac + src_mac + b'\x08\x00' + ipv4(source, 6, tcp(source, sport, flags), i & 0xFFFF)
                f.write(struct.pack('<IIII', written // 1000000, written % 1000000, len(frame), len(frame)) + frame)
                written += 1
            continue
        if kind == 'syn':
            rest = b'\x08\x00' + ipv4(source, 6, tcp(source, sport, 0x02), i & 0xFFFF)
        elif kind == 'udp':
            rest = b'\x08\x00' + ipv4(source, 17, udp(source, sport), i & 0xFFFF)
        else:
            rest = storm(i, source)
        frame = dst_mac + src_mac + rest
        f.write(struct.pack('<IIII', written // 1000000, written % 1000000, len(frame), len(frame)) + frame)
        written += 1
print('wrote %d %s frames' % (written, kind), flush=True)
if kind == 'storm':
    print('reasons ' + ' '.join(STORM_REASONS), flush=True)
