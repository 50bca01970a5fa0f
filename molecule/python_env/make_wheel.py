"""Write a minimal valid wheel (PEP 427) holding one module, for offline-install tests."""

import base64
import hashlib
import sys
import zipfile
from pathlib import Path


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main(folder: str, name: str, version: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": f'VERSION = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: gymfleet-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "\n".join(record_line(n, d) for n, d in files.items()) + f"\n{dist_info}/RECORD,,\n"
    with zipfile.ZipFile(out / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        for entry, data in files.items():
            wheel.writestr(entry, data)
        wheel.writestr(f"{dist_info}/RECORD", record)


if __name__ == "__main__":
    main(*sys.argv[1:4])
