"""The avatar builder's entry function for the CLI (listed in ``assistant.entrypoints``): ``assistant avatar build``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from assistant.config import Config


def build(config: Config, args: argparse.Namespace) -> int:
    """Build a neural avatar from talking video(s) (the options of ``assistant avatar build``).

    Prints the avatar's folder; exit 2 with the reason when the input is unusable, 130 when
    interrupted (the build resumes when run again).
    """
    from assistant import paths

    from .build import AvatarBuilder, BuildError, BuildOptions

    root = Path(args.out) if args.out else paths.avatars_dir(config.renderer.neural.avatars_dir)
    opts = BuildOptions(videos=tuple(Path(v) for v in args.videos), name=args.name, root=root, size=args.size,
                        mode=args.mode, steps=args.steps, ngf=args.ngf, batch=args.batch, minutes=args.minutes,
                        heldout=args.heldout, heldout_at=args.heldout_at, feature_matching=args.feature_matching,
                        mouth_l1=args.mouth_l1, edge_l1=args.edge_l1, loop_seconds=tuple(args.loop_seconds),
                        temporal_l1=args.temporal_l1, compare=not args.no_compare, ablate=args.ablate,
                        warm_start=args.warm_start,
                        min_seconds=args.min_seconds, lipsync_base=Path(args.lipsync_base) if args.lipsync_base else None,
                        lipsync_steps=args.lipsync_steps, device=args.device, threads=args.threads, restart=args.restart)
    try:
        folder = AvatarBuilder(opts).run()
    except BuildError as exc:
        print(f"assistant: cannot build avatar {args.name!r}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"assistant: interrupted; run the same command again to resume the build of {args.name!r}", file=sys.stderr)
        return 130
    print(folder)
    return 0
