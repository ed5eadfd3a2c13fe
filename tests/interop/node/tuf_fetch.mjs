// Run tuf-js's Updater (an independent TUF client) over an `airseal/tuf/` tree on disk.
// Usage: node tuf_fetch.mjs TREE ROOT_JSON CACHE_DIR TARGET_PATH
// Prints JSON: {"ok": true, "sha256": hex, "bytes": base64} or {"ok": false, "error": message}.
// The fetcher reads files only below TREE (a missing file is an HTTP 404, as TUF expects).
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, copyFileSync, readFileSync } from "node:fs";
import path from "node:path";
import { BaseFetcher, Updater } from "tuf-js";
import errors from "tuf-js/dist/error.js";

const [tree, rootJson, cache, targetPath] = process.argv.slice(2);
const PREFIX = "file-tree:/";

class TreeFetcher extends BaseFetcher {
  async fetch(url) {
    if (!url.startsWith(PREFIX)) throw new Error(`${url} is outside the tree`);
    const rel = decodeURIComponent(url.slice(PREFIX.length));
    const file = path.resolve(tree, rel);
    if (!file.startsWith(path.resolve(tree) + path.sep)) throw new Error(`${url} escapes the tree`);
    if (!existsSync(file)) throw new errors.DownloadHTTPError(`${rel} not found`, 404);
    return createReadStream(file);
  }
}

try {
  mkdirSync(path.join(cache, "metadata"), { recursive: true });
  mkdirSync(path.join(cache, "targets"), { recursive: true });
  copyFileSync(rootJson, path.join(cache, "metadata", "root.json"));
  const updater = new Updater({
    metadataDir: path.join(cache, "metadata"),
    metadataBaseUrl: `${PREFIX}metadata`,
    targetDir: path.join(cache, "targets"),
    targetBaseUrl: `${PREFIX}targets`,
    fetcher: new TreeFetcher(),
  });
  await updater.refresh();
  const info = await updater.getTargetInfo(targetPath);
  if (!info) throw new Error(`${targetPath} is not in targets`);
  const file = await updater.downloadTarget(info);
  const data = readFileSync(file);
  console.log(JSON.stringify({
    ok: true,
    sha256: createHash("sha256").update(data).digest("hex"),
    bytes: data.toString("base64"),
  }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: `${error.name}: ${error.message}` }));
}
