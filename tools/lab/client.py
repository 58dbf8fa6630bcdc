# The lab client the end-to-end tests run (tests/UserspaceDr.LabTests/EndToEnd): split, download, upload, udp and
# more modes, each bounded in count and time; each prints one JSON object on its last line.
import fcntl, hashlib, json, random, selectors, socket, sys, threading, time
from concurrent.futures import ThreadPoolExecutor

VIP = '198.18.0.100'
CLIENT = '198.18.0.1'
# client.py --vip ADDRESS --client ADDRESS MODE ...: another VIP and client address (the IPv6 tests' 2001:2::100);
# sessions takes several client addresses, comma-separated, and spreads its connections over them.
while len(sys.argv) > 2 and sys.argv[1] in ('--vip', '--client'):
    if sys.argv[1] == '--vip':
        VIP = sys.argv[2]
    else:
        CLIENT = sys.argv[2]
    del sys.argv[1:3]
FAMILY = socket.AF_INET6 if ':' in VIP else socket.AF_INET

# Source ports for http_get, never used twice in a lab: Linux may hand a client a port it used a moment ago, and a
# balancer still holding that port's old connection (FIN_WAIT, 2 min) to a server since removed drops the new SYN, as
# IPVS does (destination-removed); a test that removes a server and then connects again would lose connections by
# chance. Ports come from 10000-29999 (below the kernel's own range), allocated in blocks under a lock in a file
# beside this script, so runs after each other and side by side never share one.
PORTS_FILE = __file__ + '.ports'
PORT_LOW, PORT_HIGH = 10000, 30000
_ports_lock = threading.Lock()
_ports = iter(())

def next_port():
    global _ports
    with _ports_lock:
        port = next(_ports, None)
        if port is None:
            with open(PORTS_FILE, 'a+') as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                f.seek(0)
                text = f.read().strip()
                start = int(text) if text else PORT_LOW
                if start + 64 > PORT_HIGH:
                    start = PORT_LOW  # 20,000 connections on: the oldest have long left every table
                f.seek(0)
                f.truncate()
                f.write(str(start + 64))
            _ports = iter(range(start, start + 64))
            port = next(_ports)
        return port

def http_get(path, timeout):
    s = socket.socket(FAMILY, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind(('', next_port()))
        s.connect((VIP, 80))
        s.sendall(b'GET ' + path.encode() + b' HTTP/1.0\r\nHost: vip\r\n\r\n')
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    finally:
        s.close()
    head, sep, body = b''.join(chunks).partition(b'\r\n\r\n')
    if not sep or not head.startswith(b'HTTP/1.') or head.split(b' ')[1] != b'200':
        raise RuntimeError('bad response %r' % head[:60])
    return body

# split COUNT PARALLEL SECONDS: COUNT fresh connections GET /, each answered with the server's name.
def split(count, parallel, seconds):
    deadline = time.monotonic() + seconds
    def one(_):
        if time.monotonic() > deadline:
            return 'error: deadline'
        try:
            return http_get('/', 5).decode().strip()
        except Exception as e:
            return 'error: %s %s' % (type(e).__name__, e)
    counts, errors = {}, []
    with ThreadPoolExecutor(parallel) as pool:
        for answer in pool.map(one, range(count)):
            if answer.startswith('error:'):
                errors.append(answer)
            else:
                counts[answer] = counts.get(answer, 0) + 1
    return {'counts': counts, 'errors': len(errors), 'error_samples': errors[:5]}

# download PATH [PAUSE_AFTER]: streams the body through SHA-256; with PAUSE_AFTER it prints "paused N" once N
# body bytes arrived and reads on only after a line on stdin. A small receive buffer keeps most of the body
# on the server's side of the connection while paused.
def download(path, pause_after=None):
    s = socket.socket(FAMILY, socket.SOCK_STREAM)
    if pause_after is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)
    s.settimeout(20)
    s.connect((VIP, 80))
    local_port = s.getsockname()[1]
    s.sendall(b'GET ' + path.encode() + b' HTTP/1.0\r\nHost: vip\r\n\r\n')
    buffer = b''
    while b'\r\n\r\n' not in buffer:
        data = s.recv(65536)
        if not data:
            break
        buffer += data
    head, _, body = buffer.partition(b'\r\n\r\n')
    digest = hashlib.sha256(body)
    received = len(body)
    paused_at = None
    while True:
        if pause_after is not None and paused_at is None and received >= pause_after:
            paused_at = received
            print('paused %d' % received, flush=True)
            sys.stdin.readline()
        data = s.recv(65536)
        if not data:
            break
        digest.update(data)
        received += len(data)
    s.close()
    return {'status': head.split(b'\r\n')[0].decode(errors='replace'), 'bytes': received,
            'sha256': digest.hexdigest(), 'local_port': local_port, 'paused_at': paused_at}

# udp FLOWS ROUNDS: FLOWS sockets (distinct source ports) each send ROUNDS datagrams, one per round, in a new
# random order every round; every reply names the server that echoed it.
def udp(flows, rounds):
    sockets = []
    for _ in range(flows):
        s = socket.socket(FAMILY, socket.SOCK_DGRAM)
        s.bind((CLIENT, 0))
        s.setblocking(False)
        sockets.append(s)
    selector = selectors.DefaultSelector()
    for i, s in enumerate(sockets):
        selector.register(s, selectors.EVENT_READ, i)
    replies = [[] for _ in range(flows)]
    bad = []
    for r in range(rounds):
        order = list(range(flows))
        random.shuffle(order)
        for i in order:
            sockets[i].sendto(b'%d %d' % (i, r), (VIP, 5353))
        deadline = time.monotonic() + 5
        while any(len(x) <= r for x in replies) and time.monotonic() < deadline:
            for key, _ in selector.select(0.1):
                data, peer = key.fileobj.recvfrom(2048)
                words = data.decode(errors='replace').split()
                if len(words) != 3 or words[1] != str(key.data) or peer[:2] != (VIP, 5353):
                    bad.append('%r from %r on flow %d' % (data, peer, key.data))
                else:
                    replies[key.data].append(words[0])
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return {'ports': ports, 'replies': replies, 'bad': bad[:5]}

# probe: one HTTP GET and one datagram to the VIP; reports what came back (or the error).
def probe():
    result = {}
    try:
        result['tcp'] = http_get('/', 3).decode().strip()
    except Exception as e:
        result['tcp'] = 'error: %s' % type(e).__name__
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.bind((CLIENT, 0))
    s.sendto(b'0 0', (VIP, 5353))
    try:
        result['udp'] = s.recvfrom(2048)[0].decode().split()[0]
    except Exception as e:
        result['udp'] = 'error: %s' % type(e).__name__
    s.close()
    return result

# upload BYTES PORT: sends BYTES random bytes to VIP:PORT (a tcp_sink), half-closes, and compares the SHA-256
# the sink read with what was sent. Linux sets DF on TCP, so a path that cannot carry full-size segments
# completes only if the client learns the path MTU from an ICMP fragmentation-needed.
def upload(count, port):
    data = random.randbytes(count)
    started = time.monotonic()
    s = socket.create_connection((VIP, port), timeout=20)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        answer = b''
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    finally:
        s.close()
    words = answer.decode(errors='replace').split()
    return {'bytes': count, 'sent_sha256': hashlib.sha256(data).hexdigest(),
            'server': words[0] if len(words) == 2 else None, 'received_sha256': words[1] if len(words) == 2 else None,
            'seconds': round(time.monotonic() - started, 3)}

# refused PORT: a connected UDP socket sends to VIP:PORT, where the server has no listener; the kernel reports
# ECONNREFUSED only if an ICMP port-unreachable arrives that quotes exactly this socket's datagram.
def refused(port):
    s = socket.socket(FAMILY, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.bind((CLIENT, 0))
    s.connect((VIP, port))
    outcome = 'timeout'
    for attempt in range(3):
        try:
            s.send(b'anyone?')
            s.recv(2048)
            outcome = 'answered'
            break
        except ConnectionRefusedError:
            outcome = 'refused'
            break
        except socket.timeout:
            continue
    local_port = s.getsockname()[1]
    s.close()
    return {'outcome': outcome, 'local_port': local_port}

# sessions COUNT PORT SECONDS [RATE]: COUNT long-lived connections to VIP:PORT (a chat_server), each sending a line
# every 100 ms for SECONDS and reading the answers, which name the server; with RATE, also a download of /big.bin
# read at RATE bytes/s. Prints "ready PORT:SERVER..." once every connection was answered; on stdin, "close SERVER N"
# closes N connections answered by SERVER (to unbalance a least-connection scheduler) and "stop" ends early: nothing
# more is sent, and the answers still owed are awaited for up to DRAIN_SECONDS (a line in retransmission is not lost). Reports,
# per connection, the servers that answered, lines sent and answered, the longest silence and the silence at the
# end (a connection that stopped being answered); errors end only the connection they hit.
DRAIN_SECONDS = 5.0


def sessions(count, port, seconds, rate=None):
    selector = selectors.DefaultSelector()
    conns = []
    sources = CLIENT.split(',')
    for i in range(count):
        s = socket.create_connection((VIP, port), timeout=5, source_address=(sources[i % len(sources)], 0))
        s.setblocking(False)
        c = {'port': s.getsockname()[1], 'servers': [], 'sent': 0, 'answered': 0, 'max_silence': 0.0, 'error': None,
             'closed': False, 'socket': s, 'buffer': b'', 'last': None}
        conns.append(c)
        selector.register(s, selectors.EVENT_READ, c)
    # The first answer says where each connection went.
    for c in conns:
        c['socket'].sendall(b'0\n')
        c['sent'] = 1
    download_state = None
    if rate is not None:
        d = socket.create_connection((VIP, 80), timeout=5)
        d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        d.sendall(b'GET /big.bin HTTP/1.0\r\nHost: vip\r\n\r\n')
        d.setblocking(False)
        download_state = {'socket': d, 'data': b'', 'digest': hashlib.sha256(), 'bytes': 0, 'head': None,
                          'port': d.getsockname()[1], 'done': False, 'error': None}
    started = time.monotonic()
    for c in conns:
        c['last'] = started
    deadline = started + seconds
    next_send = started + 0.1
    stdin = selectors.DefaultSelector()
    stdin.register(sys.stdin, selectors.EVENT_READ)
    ready = False
    # On "stop" nothing more is sent and the answers still owed are awaited (up to DRAIN_SECONDS): a line whose segment
    # is being retransmitted when the test says stop is carried, not lost; one still unanswered after that is lost.
    draining_since = None
    while time.monotonic() < deadline:
        now = time.monotonic()
        if draining_since is not None:
            owed = [c for c in conns if not c['closed'] and not c['error'] and c['answered'] < c['sent']]
            if not owed or now - draining_since > DRAIN_SECONDS:
                break
        if not ready and all(c['answered'] > 0 or c['error'] for c in conns):
            print('ready ' + ' '.join('%d:%s' % (c['port'], c['servers'][0] if c['servers'] else '-') for c in conns), flush=True)
            ready = True
        if ready and draining_since is None and stdin.select(0):
            words = sys.stdin.readline().split()
            if words == ['stop'] or not words:
                draining_since = now
                continue
            if len(words) == 3 and words[0] == 'close':
                for c in [c for c in conns if not c['closed'] and c['servers'][:1] == [words[1]]][:int(words[2])]:
                    selector.unregister(c['socket'])
                    c['socket'].close()
                    c['closed'] = True
                print('closed', flush=True)
        if now >= next_send and draining_since is None:
            next_send += 0.1
            for c in conns:
                if not c['closed'] and not c['error']:
                    try:
                        c['socket'].send(b'%d\n' % c['sent'])
                        c['sent'] += 1
                    except OSError as e:
                        c['error'] = type(e).__name__
        for key, _ in selector.select(0.02):
            c = key.data
            try:
                data = c['socket'].recv(4096)
            except OSError as e:
                c['error'] = type(e).__name__
                selector.unregister(c['socket'])
                continue
            if not data:
                c['error'] = 'closed by peer'
                selector.unregister(c['socket'])
                continue
            c['buffer'] += data
            while b'\n' in c['buffer']:
                line, _, c['buffer'] = c['buffer'].partition(b'\n')
                server = line.split(b' ')[0].decode(errors='replace')
                if server not in c['servers']:
                    c['servers'].append(server)
                c['answered'] += 1
                now = time.monotonic()
                c['max_silence'] = max(c['max_silence'], now - c['last'])
                c['last'] = now
        if download_state and not download_state['done'] and not download_state['error']:
            d = download_state
            allowed = rate * (time.monotonic() - started) - d['bytes']
            if allowed > 0:
                try:
                    data = d['socket'].recv(min(65536, int(allowed) + 1))
                    if not data:
                        d['done'] = True
                    elif d['head'] is None:
                        d['data'] += data
                        if b'\r\n\r\n' in d['data']:
                            d['head'], _, body = d['data'].partition(b'\r\n\r\n')
                            d['digest'].update(body)
                            d['bytes'] = len(body)
                    else:
                        d['digest'].update(data)
                        d['bytes'] += len(data)
                except BlockingIOError:
                    pass
                except OSError as e:
                    d['error'] = type(e).__name__
    # How long each was quiet when the test said stop (or the time ran out): the answers awaited after it do not count.
    end = draining_since if draining_since is not None else time.monotonic()
    result = []
    for c in conns:
        c['quiet_at_end'] = max(0.0, end - c['last'])
        if not c['closed']:
            c['socket'].close()
        result.append({k: (round(v, 3) if isinstance(v, float) else v) for k, v in c.items() if k not in ('socket', 'buffer', 'last')})
    out = {'connections': result}
    if download_state:
        d = download_state
        d['socket'].close()
        out['download'] = {'status': d['head'].split(b'\r\n')[0].decode(errors='replace') if d['head'] else None,
                           'bytes': d['bytes'], 'sha256': d['digest'].hexdigest(), 'local_port': d['port'],
                           'complete': d['done'], 'error': d['error']}
    return out

# rtt TARGET PORT COUNT: COUNT UDP requests to TARGET:PORT (a udp_echo), one at a time, each waiting for its answer;
# the round-trip times' median and 99th percentile in microseconds (a lost one is retried after 1 s and counted).
def rtt(target, port, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((CLIENT, 0))
    s.connect((target, port))
    s.settimeout(1)
    times, lost = [], 0
    for i in range(count):
        payload = b'%d' % i
        while True:
            started = time.perf_counter_ns()
            s.send(payload)
            try:
                while not s.recv(2048).endswith(b' ' + payload):
                    pass
                break
            except socket.timeout:
                lost += 1
        times.append((time.perf_counter_ns() - started) / 1000)
    s.close()
    times.sort()
    return {'median_us': round(times[len(times) // 2], 1), 'p99_us': round(times[len(times) * 99 // 100], 1), 'lost': lost}

# soak SECONDS HASHES PORT...: downloads /f.bin from VIP:PORT (the ports in turn, 4 at a time) for SECONDS; each
# body's SHA-256 must be one of the files in HASHES (one hex digest per line). Counts intact, corrupt (a hash of no
# server's file) and failed (refused, reset or timed out: a server removed mid-transfer) downloads per port.
def soak(seconds, hashes_file, ports):
    known = set(open(hashes_file).read().split())
    deadline = time.monotonic() + seconds
    def one(port):
        result = {'ok': 0, 'corrupt': 0, 'failed': 0, 'bytes': 0, 'errors': {}}
        while time.monotonic() < deadline:
            try:
                s = socket.create_connection((VIP, port), timeout=10)
                s.settimeout(10)
                s.sendall(b'GET /f.bin HTTP/1.0\r\nHost: vip\r\n\r\n')
                data = b''
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                s.close()
                body = data.partition(b'\r\n\r\n')[2]
                if hashlib.sha256(body).hexdigest() in known:
                    result['ok'] += 1
                    result['bytes'] += len(body)
                else:
                    result['corrupt'] += 1
            except OSError as e:
                result['failed'] += 1
                name = type(e).__name__
                result['errors'][name] = result['errors'].get(name, 0) + 1
        return result
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, [ports[i % len(ports)] for i in range(4)]))
    out = {}
    for i, r in enumerate(results):
        total = out.setdefault(str(ports[i % len(ports)]), {'ok': 0, 'corrupt': 0, 'failed': 0, 'bytes': 0, 'errors': {}})
        for k in ('ok', 'corrupt', 'failed', 'bytes'):
            total[k] += r[k]
        for name, n in r['errors'].items():
            total['errors'][name] = total['errors'].get(name, 0) + n
    return out

mode, args = sys.argv[1], sys.argv[2:]
if mode == 'split':
    out = split(int(args[0]), int(args[1]), float(args[2]))
elif mode == 'download':
    out = download(args[0], int(args[1]) if len(args) > 1 else None)
elif mode == 'udp':
    out = udp(int(args[0]), int(args[1]))
elif mode == 'probe':
    out = probe()
elif mode == 'upload':
    out = upload(int(args[0]), int(args[1]))
elif mode == 'sessions':
    out = sessions(int(args[0]), int(args[1]), float(args[2]), float(args[3]) if len(args) > 3 else None)
elif mode == 'soak':
    out = soak(float(args[0]), args[1], [int(p) for p in args[2:]])
elif mode == 'rtt':
    out = rtt(args[0], int(args[1]), int(args[2]))
elif mode == 'refused':
    out = refused(int(args[0]))
else:
    raise SystemExit('unknown mode ' + mode)
print(json.dumps(out), flush=True)
