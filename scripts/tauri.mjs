// Runs the Tauri CLI on `src-tauri/`: the configuration sits at the repository root (as the
// layout asks) and `src-tauri/tauri.conf.json` links to it, but the CLI must be pointed at the
// folder that holds both it and the app's Cargo.toml.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
process.env.TAURI_APP_PATH = join(root, 'src-tauri');
process.env.TAURI_FRONTEND_PATH = join(root, 'ui');
const cli = createRequire(import.meta.url)('@tauri-apps/cli');
cli.run(process.argv.slice(2), 'npm run tauri').catch((err) => {
  console.error(err?.message ?? err);
  process.exit(1);
});
