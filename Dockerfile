# The Marie runtime image: the `marie` command (every package built) as the entrypoint, and one
# Flow's directory at /app/flow, where `marie export` looks for executor code.
#
#   docker build -t marie/runtime:0.1.0 .                          # FLOW = examples/pipeline
#   docker build --build-arg FLOW=path/to/my-flow -t my-flow:1 .   # then: marie export ... --image my-flow:1
#
# Executors written in TypeScript run through tsx, which the image keeps.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY . .
RUN npm ci --no-audit --no-fund \
 && npx nx run-many -t build --outputStyle=static \
 && rm -rf .nx tests/node_modules

FROM node:24-bookworm-slim
# A non-root user (the app images' `nonroot`, 65532), writing only to /workspace (and /tmp): what
# `marie export` runs with a read-only root filesystem; HOME there too, for caches.
ENV MARIE_WORKSPACE=/workspace HOME=/workspace NX_DAEMON=false
COPY --from=build /app /app
ARG FLOW=examples/pipeline
COPY ${FLOW} /app/flow
RUN ln -s /app/packages/cli/bin/marie.js /usr/local/bin/marie \
 && mkdir -p /workspace && chown 65532:65532 /workspace
USER 65532:65532
WORKDIR /app/flow
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["marie"]
CMD ["--help"]
