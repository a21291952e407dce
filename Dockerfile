# codeclm worker / CLI image. Built by temporal-docker/docker-compose.yml; usable on its own:
#   docker build -t codeclm .
#   docker run --rm -e TEMPORAL_ADDRESS=temporal.example:7233 -e OPENAI_API_KEY codeclm worker
#
# The only RUN is `npm ci`, the install CI runs (.ci/run), here without devDependencies and without
# install scripts: the project's postinstall only fetches a Temporal dev-server binary, which a worker
# never needs. tsx (runs the TypeScript sources) is a runtime dependency.
FROM node:20-slim

ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    CODECLM_HOME=/data/.codeclm

WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

COPY bin ./bin
COPY src ./src
COPY examples ./examples
# /data: run output dirs and seed files, shared by every worker (a named volume in compose). Copying
# the example seeds creates it owned by the unprivileged user.
COPY --chown=node:node examples /data/examples

USER node
ENTRYPOINT ["node", "bin/codeclm.js"]
CMD ["worker"]
