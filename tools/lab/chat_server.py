# A real server's long-lived TCP service for the failover tests: answers every line with "NAME line", on ADDRESS,
# (IPv4 or IPv6) port PORT, one thread per connection (the connections live as long as the client keeps them).
import socket, socketserver, sys
name, address, port = sys.argv[1].encode(), sys.argv[2], int(sys.argv[3])

class Chat(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(name + b' ' + line)

class Server(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6 if ':' in address else socket.AF_INET  # ADDRESS of either family
    allow_reuse_address = True
    daemon_threads = True

server = Server((address, port), Chat)
print('chat listening', flush=True)
server.serve_forever()
