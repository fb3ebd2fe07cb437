"""Client sockets: frames, the socket objects see, and the ASGI transport."""
