# Stand-in for prom/prometheus: Debian bookworm's prometheus as the entrypoint, so a
# command of flags works as in the official image; it runs as nobody in /prometheus.
# (Debian's build keeps its data in /var/lib/prometheus by default: nobody may write there.)
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus \
 && chown -R nobody:nogroup /prometheus /var/lib/prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
