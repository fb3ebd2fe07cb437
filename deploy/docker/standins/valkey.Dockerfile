# Stand-in for valkey/valkey:8: Debian bookworm's redis-server under the names the official
# image has (valkey-server, valkey-cli), protected mode off as there, data in /data.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/redis-cli /usr/local/bin/valkey-cli \
 && mkdir /data && chown redis:redis /data
COPY valkey-server /usr/local/bin/valkey-server
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["valkey-server"]
