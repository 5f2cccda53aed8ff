"""A fresh process that loads a policy both ways (SB3's own zip, then the zoo bundle through ``to_ppo``) and acts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

_SCRIPT = """
import json, sys
import numpy as np
from stable_baselines3 import PPO
from tasks.rl.integrations.sb3 import to_ppo
obs = np.array(json.loads(sys.argv[3]), dtype=sys.argv[4])
for ppo in (PPO.load(sys.argv[1], device="cpu"), to_ppo(sys.argv[2])):
    print(json.dumps(ppo.predict(obs, deterministic=True)[0].tolist()))
"""


def fresh_process_actions(repo_root: Path, zip_path: Path, bundle: Path, obs: np.ndarray) -> list[list]:
    """[the zip's deterministic actions on ``obs``, the bundle's], each computed in one new Python process."""
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(zip_path), str(bundle), json.dumps(obs.tolist()), str(obs.dtype)],
        capture_output=True,
        text=True,
        cwd=repo_root,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.strip().splitlines()[-2:]]
