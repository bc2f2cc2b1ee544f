"""`make demo`: a three-node meshprint site on this machine, with a demo user, a virtual
printer, the web UI, and the node's own Secure Print printer (IPP, on a loopback port).

Everything lives in .demo/ (made fresh each run) and listens on 127.0.0.1 only.
The demo user's password is random and printed here: there are no default passwords.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from appliance.devtools.localmesh import LocalMesh
from appliance.devtools.virtual_printer import MdnsBus, VirtualPrinter
from appliance.errors import MeshprintError
from appliance.mesh.peers import LIVE_WINDOW

SAMPLE_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]"
    b"/Count 1>>endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def main() -> int:
    root = Path(".demo").resolve()
    shutil.rmtree(root, ignore_errors=True)
    print("Starting a three-node meshprint site on 127.0.0.1 (data in .demo/) …")
    mesh = LocalMesh(root, size=3, name="Demo office")
    try:
        mesh.create()
        password = secrets.token_urlsafe(9)
        token = mesh.add_user("demo", password)
    except MeshprintError as err:
        mesh.close()
        print(f"demo: {err}", file=sys.stderr)
        return 1
    printer_line, release_to = "", ""
    bus = printer = None
    try:
        bus = MdnsBus(root / "mdns").start()
        printer = VirtualPrinter(bus, root / "printer", name="meshprint demo printer").start()
        mesh.cli(
            "printer",
            "add",
            "demo-printer",
            "--uri",
            printer.uri,
            "--location",
            "on this machine",
            "--data",
            str(mesh.nodes[0].data),
        )
        mesh.wait_directory()
        printer_line = (
            f"\nVirtual printer: demo-printer ({printer.uri}); what it prints lands "
            f"in {printer.spool}"
        )
        release_to = (
            f"\n  .venv/bin/meshprint release JOB_ID --node {mesh.nodes[0].release} --user demo "
            "\\\n      --password-file .demo/demo.password --printer demo-printer"
        )
    except MeshprintError as err:
        print(f"(no virtual printer: {err}; releases go to a file instead)")
    web, web_line = _web_ui(root, mesh, bus)
    (root / "demo.password").write_text(password + "\n")
    (root / "sample.txt").write_text("Hello from meshprint: this page was held encrypted.\n")
    (root / "sample.pdf").write_bytes(SAMPLE_PDF)
    a, b, c = mesh.nodes
    ca = mesh.ca
    mp = ".venv/bin/meshprint"
    live_window = LIVE_WINDOW
    print(
        f"""
Site "Demo office" is up:
  node0 {a.id}  super node, controller   submit {a.submit}  release {a.release}
  node1 {b.id}  super node               submit {b.submit}  release {b.release}
  node2 {c.id}  edge node                submit {c.submit}  release {c.release}

Demo user: demo   password: {password}   submit token: {token}
(password also in .demo/demo.password){printer_line}{web_line}
Recovery key: {mesh.recovery_key}  (also in .demo/.recovery-key; it restores the site
  if node0 is lost, and unlocks a release without the owner's password)

Try, in another terminal:
  export MESHPRINT_CA={ca}
  {mp} status --node {a.release}
  {mp} submit .demo/sample.txt --node {b.submit} --user demo --token {token}
  {mp} jobs --node {c.release} --user demo --password-file .demo/demo.password{release_to}
  {mp} release JOB_ID --node {a.release} --user demo \\
      --password-file .demo/demo.password --to out.txt
  {mp} release JOB_ID --node {a.release} --data .demo/node0 \\
      --key-file .demo/.recovery-key --to out.txt      # as the administrator

Print to Secure Print (node0's own IPP printer, as a laptop or phone would), then see
the job with `jobs` above:
  ipptool -tv -f .demo/sample.pdf \\
      'ipps://demo:{password}@127.0.0.1:{a.ipp_port}/ipp/print' print-job.test

Two holders down: a job is held on all three nodes; stop two of them and release again
from the one left (the owner's password and one holder are enough):
  kill {b.process_id} {c.process_id}      # node1 and node2
  {mp} status --node {a.release}   # they show as down within {live_window:.0f} s
Press Ctrl-C to stop the demo.""",
        flush=True,
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        time.sleep(0.5)
    print("\nStopping the demo mesh …")
    if web is not None:
        web.stop()
    mesh.close()
    if printer is not None:
        printer.close()
    if bus is not None:
        bus.stop()
    return 0


def _web_ui(root: Path, mesh: LocalMesh, bus: MdnsBus | None) -> tuple[Any, str]:
    """The web UI (setup wizard, console, release page) on a loopback port."""
    try:
        from appliance.devtools.webserver import serve_demo

        node = mesh.nodes[0]
        web, code = serve_demo(root, node.data, node.release, bus.env if bus else None)
    except (MeshprintError, OSError) as err:
        return None, f"\n(no web UI: {err})"
    return web, (
        f"\n\nWeb UI: {web.url}/setup  (self-signed certificate: accept the browser's warning)"
        f"\n  setup code: {code}   release page: https://{node.release}/release"
        "\n  (the wizard's administrator step asks for the recovery key below: the site "
        "was made on the command line)"
    )


if __name__ == "__main__":
    sys.exit(main())
