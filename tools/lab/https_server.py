# A real server's HTTPS answer for the SSL_GET tests: serves DIRECTORY over TLS with CERT and KEY on every address,
# port PORT (python's http.server behind an ssl context).
import functools, http.server, ssl, sys
directory, cert, key, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
server = http.server.ThreadingHTTPServer(('0.0.0.0', port), handler)
server.socket = context.wrap_socket(server.socket, server_side=True)
print('https listening', flush=True)
server.serve_forever()
