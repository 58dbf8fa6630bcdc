# A real server's long-lived TCP service for the failover tests: answers every line with "NAME line", on ADDRESS,
# port PORT, one thread per connection (the connections live as long as the client keeps them).
import socketserver, sys
name, address, port = sys.argv[1].encode(), sys.argv[2], int(sys.argv[3])

class Chat(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(name + b' ' + line)

socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
server = socketserver.ThreadingTCPServer((address, port), Chat)
print('chat listening', flush=True)
server.serve_forever()
