// Long-lived MicroPython (official WebAssembly port) server for the Plexus test rig.
// Reads one JSON request per line on stdin: {"id": n, "code": "...", "async": bool}
// and answers one JSON line per request on stdout: {"id": n, "ok": bool, "out": "...", "err": "..."}.
// The directory given as argv[2] (build/mpy, the .mpy files mpy-cross made) is copied into /lib.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "fs";
import path from "path";
import readline from "readline";

const libDir = process.argv[2];
const heapMB = parseInt(process.env.PLEXUS_MPY_HEAP_MB || "64", 10);
let out = "";
const mp = await loadMicroPython({
  heapsize: heapMB * 1024 * 1024,
  stdout: (s) => { out += s + "\n"; },
  stderr: (s) => { out += s + "\n"; },
  linebuffer: true,
});

function copyTree(src, dst) {
  mp.FS.mkdirTree(dst);
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, ent.name), d = dst + "/" + ent.name;
    if (ent.isDirectory()) copyTree(s, d);
    else mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
if (libDir) copyTree(libDir, "/lib");

const send = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
send({ id: 0, ok: true, out: "ready", err: "" });

const rl = readline.createInterface({ input: process.stdin, terminal: false });
// Requests are served strictly one at a time, in order.
let chain = Promise.resolve();
rl.on("line", (line) => {
  chain = chain.then(async () => {
    let req;
    try { req = JSON.parse(line); } catch (e) { send({ id: -1, ok: false, out: "", err: "bad request: " + e }); return; }
    out = "";
    try {
      if (req.async) await mp.runPythonAsync(req.code);
      else mp.runPython(req.code);
      send({ id: req.id, ok: true, out, err: "" });
    } catch (e) {
      send({ id: req.id, ok: false, out, err: (e && e.message) ? e.message : String(e) });
    }
  });
});
rl.on("close", () => { chain.then(() => process.exit(0)); });
