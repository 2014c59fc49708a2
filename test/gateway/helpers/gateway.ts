/** Starts an in-process gateway on ephemeral ports with a temp data dir and the test FrameStore. */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { resolveConfig, type ConfigInput } from '../../../gateway/config.ts'
import { startGateway, type Gateway } from '../../../gateway/gateway.ts'
import { memoryLogger } from '../../../gateway/log.ts'
import { inlineChecker, protocolCodec } from '../../../gateway/protocol-codec.ts'
import type { FrameChecker } from '../../../gateway/frame-check.ts'
import { FileFrameStore, MemoryConsent } from '../../../testing/file-store.ts'
import { tempDir } from '../../helpers/tmp.ts'

export interface TestGateway extends Gateway {
  dir: string
  fileStore: FileFrameStore
  consent: MemoryConsent
  logs: ReturnType<typeof memoryLogger>['entries']
  mqttUrl: string
  httpUrl: string
}

export async function startTestGateway(cfg: ConfigInput = {}, opts: { dir?: string; checker?: FrameChecker } = {}): Promise<TestGateway> {
  const dir = opts.dir ?? tempDir('mh-gw-')
  const log = memoryLogger()
  const consent = new MemoryConsent()
  let fileStore!: FileFrameStore
  const gw = await startGateway(
    resolveConfig({ mqttPort: 'auto', mqttsPort: 0, wsPort: 0, httpPort: 'auto', ...cfg, dataDir: dir }),
    {
      codec: protocolCodec,
      checker: opts.checker ?? inlineChecker(),
      consent,
      log,
      openStore: async ({ dataDir }) => (fileStore = new FileFrameStore(join(dataDir, 'frames.jsonl'))),
    },
  )
  return Object.assign(gw, {
    dir,
    fileStore,
    consent,
    logs: log.entries,
    mqttUrl: `mqtt://127.0.0.1:${gw.ports.mqtt}`,
    httpUrl: `http://127.0.0.1:${gw.ports.http}`,
  })
}

export function cleanup(gw: TestGateway): Promise<void> {
  return gw.close().finally(() => rmSync(gw.dir, { recursive: true, force: true }))
}
