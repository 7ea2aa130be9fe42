"""The one codegen step: compiles `proto/tastemaker/v1/*.proto` into `tastemaker/v1/`.

Run `python -m tastemaker.codegen` after editing a .proto; a test checks the output is fresh.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "proto"
PROTO_FILES = ("tastemaker/v1/api.proto", "tastemaker/v1/records.proto")


def generate(out_dir: Path) -> list[Path]:
    """Compile the protos into `out_dir/tastemaker/v1/`; returns the files written.

    protoc runs in its own process: its C++ extension must not share a process with TensorFlow's
    (both bundle protobuf and absl; loading one after the other crashed here)."""
    try:
        import grpc_tools
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("codegen needs grpcio-tools: pip install 'tastemaker[dev]'") from exc

    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *PROTO_FILES,
    ]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}\n{done.stderr}")
    generated = sorted((out_dir / "tastemaker" / "v1").glob("*_pb2*.py*"))
    return generated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO_ROOT, help="output root (default: the repo)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path.relative_to(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
