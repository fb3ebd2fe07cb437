# One node of the runtime, serving the reference apps.

# The browser bundle (the whiteboard's Yjs client) is built with npm + esbuild, then only
# the built files go into the node's image: no Node.js at run time.
FROM node:20-slim AS bundle
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY static ./static
RUN npm run build

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY runtime ./runtime
COPY apps ./apps
COPY examples ./examples
COPY static ./static
COPY --from=bundle /build/static/build ./static/build
RUN pip install --no-cache-dir -e .

ENV HOST=0.0.0.0 \
    PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# SIGTERM drains the node: no new objects, events finish, sockets close with 1012,
# leases are released at once.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "runtime", "serve"]
