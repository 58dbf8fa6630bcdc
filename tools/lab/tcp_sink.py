# A real server's TCP sink for the end-to-end tests: reads uploads on ADDRESS (IPv4 or IPv6) port 9000 and answers
# with their SHA-256.
import hashlib, socket, sys
name = sys.argv[1]
listener = socket.socket(socket.AF_INET6 if ':' in sys.argv[2] else socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[2], 9000))
listener.listen(16)
print('sink listening', flush=True)
while True:
    connection, _ = listener.accept()
    connection.settimeout(60)
    digest = hashlib.sha256()
    try:
        while True:
            data = connection.recv(65536)
            if not data:
                break
            digest.update(data)
        connection.sendall(('%s %s' % (name, digest.hexdigest())).encode())
    except OSError:
        pass
    finally:
        connection.close()
