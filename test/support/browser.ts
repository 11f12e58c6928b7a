// A real headless Chromium for the console's browser tests: Debian's `chromium`
// package (installed by .ci/run where it is missing), driven by playwright-core, which
// downloads no browser of its own. QUEUES_CHROMIUM names another binary.
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM_PATHS = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

export function chromiumPath(): string {
  const configured = process.env.QUEUES_CHROMIUM;
  if (configured) return configured;
  const found = CHROMIUM_PATHS.find((path) => existsSync(path));
  if (!found) throw new Error(`No Chromium found (${CHROMIUM_PATHS.join(", ")}): install Debian's package with \`apt-get install chromium\` (.ci/run does), or set QUEUES_CHROMIUM`);
  return found;
}

export function launchChromium(): Promise<Browser> {
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}
