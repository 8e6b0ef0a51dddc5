# Mandate's container image: the packed npm packages installed on Node 24, run as a non-root
# user, with the data folder on a volume and a health check on /readyz.
#
#   docker build -t mandate .
#   docker run --read-only --tmpfs /tmp -p 8787:8787 -v mandate-data:/var/lib/mandate \
#     -v "$PWD/policies:/etc/mandate/policies:ro" mandate
#
# Three nodes on PostgreSQL: compose.yaml beside this file. docs/deployment.md explains both.

# --- build: the packages, compiled and packed exactly as `npm run pack:packages` does
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.base.json tsconfig.build.json tsconfig.json LICENSE ./
COPY packages ./packages
COPY scripts ./scripts
COPY examples/policies ./examples/policies
RUN npm ci --no-audit --no-fund \
 && npm run -s pack:packages -- --out /dist \
 && rm -f /dist/mandate-sdk-*.tgz

# --- runtime: the tarballs installed into an empty folder, no sources, no dev dependencies
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    MANDATE_DATA_DIR=/var/lib/mandate \
    MANDATE_POLICIES_DIR=/etc/mandate/policies \
    MANDATE_HOST=0.0.0.0 \
    MANDATE_PORT=8787
WORKDIR /opt/mandate
COPY --from=build /dist/ /tmp/packages/
RUN npm init -y >/dev/null \
 && npm install --omit=dev --no-audit --no-fund /tmp/packages/*.tgz \
 && rm -rf /tmp/packages /root/.npm \
 && mkdir -p /var/lib/mandate /etc/mandate/policies \
 && chown node:node /var/lib/mandate
# the node image's unprivileged user (uid 1000); the root file system can be mounted read-only:
# Mandate writes only to the data folder (and skips its compile cache when it cannot write it)
USER node
VOLUME ["/var/lib/mandate"]
EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.MANDATE_PORT||8787)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/opt/mandate/node_modules/.bin/mandate"]
CMD ["serve"]
