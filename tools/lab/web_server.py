# A real server's web answer: serves DIRECTORY on ADDRESS (IPv4 or IPv6), port 80, as `python -m http.server 80 --bind
# ADDRESS --directory DIRECTORY` does, but without that server's reverse lookup of its address before it listens
# (HTTPServer.server_bind calls socket.getfqdn), which waits about 10 s for a resolver the lab's namespaces cannot reach.
import functools, http.server, socket, socketserver, sys
directory, address = sys.argv[1], sys.argv[2]


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ':' in address else socket.AF_INET

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = address, self.server_address[1]


server = Server((address, 80), functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory))
print(f'Serving HTTP on {address} port 80', flush=True)
server.serve_forever()
