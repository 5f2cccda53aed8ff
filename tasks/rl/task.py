"""Reinforcement learning: searched actor-critic networks trained with stable-baselines3's PPO.

A candidate (:class:`tasks.rl.space.PolicyGenotype`) becomes SB3's ``ActorCriticPolicy`` with
the genotype's towers (:class:`tasks.rl.integrations.sb3.ZooPolicy`) and trains with PPO on
``data.env`` under rl-zoo3's tuned hyper-parameters where they exist (:mod:`tasks.rl.data`).
Its reward for a multi-trial search is the area under its learning curve: the mean return of
deterministic evaluation episodes at up to ``trainer.estimate_evals`` equally spaced points of a
``trainer.estimate_steps``-step training (evaluations fall between rollouts; the first steps of a
full run: the learning-rate and clip schedules run over ``trainer.steps``), averaged over
``trainer.estimate_seeds`` training seeds (RL is noisy). Every evaluation counts, so one lucky or
unlucky last evaluation is one point of several, a return that falls back costs what it lost, and
a candidate that learned early and held its return scores above one that reached it only at the
end (``trainer.estimate_score=final``: the last point alone, the older estimate). The winner is retrained for ``trainer.steps`` and evaluated over
``trainer.eval_episodes`` episodes on seeds no candidate saw, beside SB3's ``MlpPolicy`` sized to
the searched policy's parameter count (:meth:`RL.baseline_arch`) trained with the same steps, settings and seed. ``search=darts``
trains a supernet policy (:mod:`tasks.rl.supernet`).

Image observations (``data.env=MinAtar/Breakout-v1``): the ``policy`` space searches the DARTS cells of
a convolutional encoder the two heads share (:class:`tasks.rl.model.CellEncoder`), and the baseline is
the MinAtar paper's network (Young & Tian 2019, arXiv:1903.03176: one 3x3 convolution of 16 channels,
a 128-unit layer) with both widths scaled to the searched policy's parameter count.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tasks.rl.data import EnvInfo, env_info, ppo_settings
from tasks.rl.metrics import curve_score, evaluate, steps_to
from tasks.rl.space import PolicyGenotype
from tasks.rl.train import EVAL_SEED, seed_for, train_ppo
from zoo.config_values import NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, Count, Flag, Number, OneOf, Text
from zoo.estimate.problem import OneShotProblem
from zoo.task import TASKS, Task, compare_with_baseline

ESTIMATE_SEED = 3_000_000  # candidates' evaluation episodes
# ``width: null`` of task.model / estimate_model / supernet, by observation: units of the dense towers, or channels
# of the image encoder's stem (its cells run on 10x10 maps for every environment step, so they set PPO's speed:
# at 8 channels about 680 steps/s on one thread, at 32 channels 185, against 5,600 for the MinAtar network)
DEFAULT_WIDTH = {"vector": 32, "image": 8}
# ``trainer.estimate_steps: null``: this fraction of the final training's steps. Images get shorter estimates: a
# candidate's image encoder trains at an eighth of the MinAtar network's speed, and 24 candidates of 2 seeds at
# 1/20 of 200,000 steps take about 12 minutes of training on one thread (not measured with their evaluations)
ESTIMATE_FRACTION = {"vector": 10, "image": 20}


def _transposed(space: Any) -> Any:
    """A channel-last image space channel-first, as SB3's ``VecTransposeImage`` gives it to the policy."""
    from stable_baselines3.common.vec_env import VecTransposeImage

    return VecTransposeImage.transpose_space(space)


def _null_or(spec: Number) -> Number:
    return Number(spec.integer, spec.low, spec.high, spec.low_open, spec.high_open, null=True)


@TASKS.register("rl")
class RL(Task):
    name = "rl"
    metric = "return"
    width_keys = {"width": 1}  # both towers' units
    supernet_kinds = ("darts",)
    second_order = False  # PPO's loss calls the policy's evaluate_actions, which second-order DARTS cannot re-bind
    amp_unsupported = "stable-baselines3's PPO trains its policies in float32, and the one-shot search shares its policy"
    spaces = ("policy",)
    config_specs = {
        **{f"{part}.layers": POSITIVE_INT for part in ("model", "estimate_model", "supernet")},
        **{f"{part}.width": _null_or(POSITIVE_INT) for part in ("model", "estimate_model", "supernet")},
        "supernet.rollouts": POSITIVE_INT,
        "baseline.enabled": Flag(),
        "baseline.net_arch": Number(integer=True, low=1, items=True, null=True),
        "baseline.params": Count(null=True),
        "baseline.tolerance": Number(integer=False, low=0.0, high=1.0, low_open=True),
        "gif": Flag(),
    }
    data_specs = {"gym": {"env": Text(), "threshold": Number(integer=False, null=True)}}
    trainer_specs = {
        "steps": _null_or(POSITIVE_INT),
        "epochs": POSITIVE_INT,
        "estimate_steps": _null_or(POSITIVE_INT),
        "estimate_seeds": POSITIVE_INT,
        "estimate_score": OneOf(("auc", "final")),
        "estimate_evals": POSITIVE_INT,
        "eval_every": NON_NEGATIVE_INT,
        "curve_episodes": POSITIVE_INT,
        "eval_episodes": POSITIVE_INT,
        "n_envs": _null_or(POSITIVE_INT),
        "n_steps": _null_or(Number(integer=True, low=2)),
        "batch_size": _null_or(Number(integer=True, low=2)),
        "n_epochs": _null_or(POSITIVE_INT),
        "gamma": _null_or(Number(integer=False, low=0, high=1)),
        "gae_lambda": _null_or(Number(integer=False, low=0, high=1)),
        "lr": _null_or(POSITIVE),
        "lr_schedule": OneOf(("constant", "linear"), null=True),
        "clip_range": _null_or(POSITIVE),
        "ent_coef": _null_or(Number(integer=False, low=0)),
        "vf_coef": _null_or(Number(integer=False, low=0)),
        "max_grad_norm": _null_or(POSITIVE),
        "amp": Flag(),  # declared as every trainer's, always false here (amp_unsupported)
    }

    def setup(self) -> None:
        self.info: EnvInfo = env_info(str(self.data_cfg.env))
        self.env_id = self.info.env_id
        searches_images = bool(getattr(self.space, "image", False))
        if searches_images != self.info.image:
            from zoo.config_values import ConfigError

            cells = "image cells" if searches_images else "dense towers"
            raise ConfigError(
                f"space.env={getattr(self.space, 'env', None)} gives the policy space {cells}, but data.env={self.env_id} has "
                f"{self.info.spaces()}; allowed: space.env=${{data.env}} (the default)"
            )
        self.kind = "image" if self.info.image else "vector"
        self.hp = ppo_settings(self.env_id, self.trainer_cfg)
        t = self.data_cfg.get("threshold")
        self.threshold = float(t) if t is not None else self.info.reward_threshold
        self.curves: dict[str, list[dict[str, Any]]] = {}
        self.trained: dict[str, Any] = {}

    def describe_data(self) -> dict[str, Any]:
        return {"name": self.env_id, **self.info.describe(), "threshold": self.threshold, "ppo": self.hp}

    # ---- models
    def size_config(self, final: bool = True, scaled: bool = True) -> Any:
        """``task.model`` (or ``estimate_model``) with a null ``width`` given the observations' default (:data:`DEFAULT_WIDTH`);
        the config itself keeps null, so a resumed run compares what the user gave."""
        return self._with_width(super().size_config(final, scaled))

    def supernet_size(self) -> Any:
        """``task.supernet`` with a null ``width`` given the observations' default."""
        return self._with_width(self.cfg.supernet)

    def _with_width(self, size: Any) -> Any:
        from omegaconf import OmegaConf

        return size if size.get("width") is not None else OmegaConf.merge(size, {"width": DEFAULT_WIDTH[self.kind]})

    def model_config(self, genotype: Any, final: bool = True) -> dict[str, Any]:
        m = self.size_config(final)
        i = self.info
        out = {
            "arch": genotype.to_json(),
            "obs_dim": i.obs_dim,
            "n_actions": i.n_actions,
            "discrete": i.discrete,
            "action_low": i.action_low,
            "action_high": i.action_high,
            "width": int(m.width),
            "layers": int(m.layers),
        }
        if i.image:
            from tasks.rl.model import FEATURES

            out.update({"obs_shape": list(i.obs_shape or ()), "features": FEATURES})
        return out

    def build_model(self, genotype: Any, final: bool = True) -> nn.Module:
        from zoo.models import create_model

        torch.manual_seed(self.seed)
        return create_model(task=self.name, **self.model_config(genotype, final))

    def example_input(self) -> torch.Tensor:
        """One observation of the environment (reset with the run's seed), flattened as the policy takes it."""
        from tasks.rl.data import make_env

        env = make_env(self.env_id)
        try:
            obs, _ = env.reset(seed=self.seed)
            space = env.observation_space
        finally:
            env.close()
        if self.info.image:  # SB3's own preprocessing: channels first, uint8 images divided by 255, others as they are
            from stable_baselines3.common.preprocessing import maybe_transpose, preprocess_obs

            batch = torch.as_tensor(maybe_transpose(np.asarray(obs)[None], space))
            shape = self.info.obs_shape or ()
            channel_first = space if tuple(space.shape) == tuple(shape) else _transposed(space)
            return preprocess_obs(batch, channel_first, normalize_images=True).float()
        if not np.ndim(obs):  # Discrete observation: one-hot
            one_hot = np.zeros(self.info.obs_dim, dtype=np.float32)
            one_hot[int(obs)] = 1.0
            obs = one_hot
        return torch.as_tensor(np.asarray(obs, dtype=np.float32).reshape(1, -1))

    # ---- PPO
    def new_ppo(self, policy: Any, seed: int, policy_kwargs: dict[str, Any] | None = None) -> Any:
        """A :class:`RunPPO` on ``n_envs`` copies of the environment with this run's PPO settings."""
        from stable_baselines3.common.env_util import make_vec_env

        from tasks.rl.integrations.sb3 import RunPPO, ppo_kwargs

        env = make_vec_env(self.env_id, n_envs=int(self.hp["n_envs"]), seed=seed)
        return RunPPO(policy, env, policy_kwargs=policy_kwargs, seed=seed, device=self.device, verbose=0, **ppo_kwargs(self.hp))

    def _zoo_ppo(self, genotype: PolicyGenotype, final: bool, seed: int) -> Any:
        from tasks.rl.integrations.sb3 import ZooPolicy, policy_kwargs

        m = self.size_config(final)
        return self.new_ppo(ZooPolicy, seed, policy_kwargs(genotype, int(m.width), int(m.layers)))

    def _steps(self) -> int:
        return int(self.hp["steps"])  # trainer.steps, else rl-zoo3's for the env, else SB3_PPO's

    def estimate(self, genotype: Any) -> dict[str, Any]:
        """Trains the candidate on each of ``trainer.estimate_seeds`` seeds and evaluates it ``trainer.estimate_evals``
        times along the way (:func:`curve_score`); the reward is the mean over seeds."""
        steps = int(self.trainer_cfg.estimate_steps or max(1, self._steps() // ESTIMATE_FRACTION[self.kind]))
        evals = int(self.trainer_cfg.get("estimate_evals", 5))
        kind = str(self.trainer_cfg.get("estimate_score", "auc"))
        scores, curves, params = [], [], 0
        for k in range(int(self.trainer_cfg.estimate_seeds)):
            seed = seed_for(self.seed, 101, k)
            ppo, curve = train_ppo(
                lambda s=seed: self._zoo_ppo(genotype, False, s),
                self.env_id,
                steps,
                1,
                seed,
                desc="estimate",
                schedule_steps=self._steps(),
                eval_every=-(-steps // (evals if kind == "auc" else 1)),  # final: the one point at the end
                eval_episodes=int(self.trainer_cfg.curve_episodes),
                eval_seed=ESTIMATE_SEED,
            )
            scores.append(curve_score(curve, kind))
            curves.append([{"steps": int(h["steps"]), "eval_return": float(h["eval_return"])} for h in curve])
            params = sum(p.numel() for p in ppo.policy.parameters())
        return {
            "reward": float(np.mean(scores)),
            "score_kind": kind,
            "scores_per_seed": scores,
            "curves": curves,
            "estimate_steps": steps,
            "params": params,
        }

    def _train_and_test(self, key: str, make: Any, checkpoints: Any) -> tuple[Any, dict[str, Any]]:
        t0 = time.time()
        ckpt = checkpoints.for_model(key) if checkpoints is not None else None
        ppo, curve = train_ppo(
            make,
            self.env_id,
            self._steps(),
            int(self.trainer_cfg.epochs),
            self.seed,
            checkpoint=ckpt,
            eval_every=int(self.trainer_cfg.eval_every),
            eval_episodes=int(self.trainer_cfg.curve_episodes),
            progress=self.progress,
            desc=f"retrain {key}",
        )
        seconds = time.time() - t0 + (ckpt.seconds_before if ckpt is not None else 0.0)  # a resumed training's earlier part too
        rets = evaluate(ppo.policy, self.env_id, int(self.trainer_cfg.eval_episodes), EVAL_SEED)
        self.curves[key] = curve
        self.trained[key] = ppo
        return ppo, {
            "mean_return": float(np.mean(rets)),
            "std_return": float(np.std(rets)),
            "episodes": len(rets),
            "steps": int(ppo.num_timesteps),
            "steps_to_threshold": steps_to(curve, self.threshold),
            "params": sum(p.numel() for p in ppo.policy.parameters()),
            "train_seconds": round(seconds, 1),
            "curve": curve,
        }

    def retrain(self, genotype: Any, checkpoints: Any = None) -> tuple[nn.Module, dict[str, Any]]:
        from tasks.rl.integrations.sb3 import policy_net

        ppo, s = self._train_and_test("searched", lambda: self._zoo_ppo(genotype, True, self.seed), checkpoints)
        model = policy_net(ppo.policy, self.info.obs_dim, self.info.n_actions, self.info.discrete)
        out: dict[str, Any] = {
            "score": s["mean_return"],
            "test_mean_return": s["mean_return"],
            "test_std_return": s["std_return"],
            "steps_to_threshold": s["steps_to_threshold"],
            "threshold": self.threshold,
            "params": s["params"],
            "train_steps": s["steps"],
            "train_seconds": s["train_seconds"],
            "curve": s["curve"],
        }
        if bool(self.cfg.baseline.enabled):
            arch, about = self.baseline_arch(int(s["params"]))
            policy, kwargs = self.baseline_policy(arch)
            make = lambda: self.new_ppo(policy, self.seed, kwargs)  # noqa: E731
            _, b = self._train_and_test("baseline", make, checkpoints)
            out.update(
                {
                    "test_mean_return_baseline": b["mean_return"],
                    "steps_to_threshold_baseline": b["steps_to_threshold"],
                    "params_baseline": b["params"],
                    "baseline": {**about, **b},
                }
            )
            out.update(compare_with_baseline(s, b, ["mean_return"], "mean_return", out["baseline"]))
        return model, out

    def baseline_policy(self, arch: list[int]) -> tuple[Any, dict[str, Any]]:
        """SB3's policy and ``policy_kwargs`` of the hand-made baseline ``arch`` (:meth:`baseline_arch`): ``MlpPolicy``
        with ``arch`` for pi and vf; for image observations SB3's ``CnnPolicy`` layout on the MinAtar network
        (:class:`tasks.rl.integrations.sb3.MinAtarPolicy`, ``arch`` = [channels, units]), the heads on its features."""
        if self.info.image:
            from tasks.rl.integrations.sb3 import MinAtarPolicy

            return MinAtarPolicy, {"channels": int(arch[0]), "units": int(arch[1])}
        return "MlpPolicy", {"net_arch": {"pi": list(arch), "vf": list(arch)}}

    def baseline_arch(self, searched_params: int) -> tuple[list[int], dict[str, Any]]:
        """The hand-made policy's hidden layers (the same for pi and vf, tanh, SB3's ``MlpPolicy``): ``task.baseline.net_arch``
        when given, else two equal layers whose width gives the parameter count closest to ``task.baseline.params``, by
        default the searched policy's ``searched_params``. Image observations: the MinAtar network's [channels, units]
        (:meth:`image_baseline_arch`)."""
        if self.info.image:
            return self.image_baseline_arch(searched_params)
        fixed = self.cfg.baseline.get("net_arch")
        if fixed is not None:
            arch = [int(w) for w in fixed]
            return arch, {"model": f"stable-baselines3 MlpPolicy (pi and vf {'x'.join(map(str, arch))}, tanh)"}
        from stable_baselines3.common.policies import ActorCriticPolicy

        from tasks.rl.data import make_env
        from zoo.sizing import fit_params, target_params

        env = make_env(self.env_id)
        try:
            spaces = env.observation_space, env.action_space
        finally:
            env.close()

        def member(w: float) -> nn.Module:
            width = max(1, round(w))
            return ActorCriticPolicy(*spaces, lambda _: 0.0, net_arch={"pi": [width, width], "vf": [width, width]})

        sized = fit_params(member, target_params(self.cfg.baseline, searched_params), 1.0, 2048.0)
        width = max(1, round(sized.width))
        return [width, width], {
            "model": f"stable-baselines3 MlpPolicy (pi and vf {width}x{width}, tanh)",
            **sized.report(float(self.cfg.baseline.get("tolerance", 0.1))),
        }

    def image_baseline_arch(self, searched_params: int) -> tuple[list[int], dict[str, Any]]:
        """The MinAtar paper's network (Young & Tian 2019: a 3x3 convolution of 16 channels, a 128-unit layer) as
        [channels, units]: ``task.baseline.net_arch`` when given, else both scaled by one width multiplier ``w``
        (``round(16 w)``, ``round(128 w)``) to the parameter count closest to ``task.baseline.params``, by default
        the searched policy's ``searched_params`` (counted with the heads, as SB3 builds the policy)."""
        from tasks.rl.model import FEATURES, MinAtarNet

        def name(arch: list[int]) -> str:
            return f"MinAtar network (Young & Tian 2019: conv 3x3 {arch[0]} channels, {arch[1]} units), SB3's CnnPolicy layout"

        fixed = self.cfg.baseline.get("net_arch")
        if fixed is not None:
            arch = [int(w) for w in fixed]
            if len(arch) != 2:
                from zoo.config_values import ConfigError

                raise ConfigError(
                    f"task.baseline.net_arch={arch} is invalid with image observations (data.env={self.env_id}); "
                    "allowed: [channels, units] of the MinAtar network, e.g. [16, 128]"
                )
            return arch, {"model": name(arch)}
        from zoo.sizing import fit_params, target_params

        shape, i = self.info.obs_shape or (1, 1, 1), self.info

        def arch_at(w: float) -> list[int]:
            return [max(1, round(16 * w)), max(1, round(FEATURES * w))]

        def member(w: float) -> nn.Module:  # what SB3 builds: the network, the action head, the value head (and log_std)
            channels, units = arch_at(w)
            parts = nn.ModuleList([MinAtarNet(shape, channels, units), nn.Linear(units, i.n_actions), nn.Linear(units, 1)])
            if not i.discrete:
                parts.register_parameter("log_std", nn.Parameter(torch.zeros(i.n_actions)))
            return parts

        sized = fit_params(member, target_params(self.cfg.baseline, searched_params), 1 / 16, 8.0)
        arch = arch_at(sized.width)
        return arch, {
            "model": name(arch),
            "width_multiplier": round(sized.width, 4),
            **sized.report(float(self.cfg.baseline.get("tolerance", 0.1))),
        }

    # ---- one-shot
    def _super_ppo(self, seed: int) -> Any:
        from tasks.rl.supernet import SuperImagePolicy, SuperPolicy, supernet_kwargs

        s = self.supernet_size()
        torch.manual_seed(self.seed)
        policy = SuperImagePolicy if self.info.image else SuperPolicy
        return self.new_ppo(policy, seed, supernet_kwargs(self.space, int(s.width), int(s.layers)))

    def one_shot_problem(self) -> OneShotProblem:
        from tasks.rl.metrics import ppo_loss
        from tasks.rl.supernet import RolloutLoader

        train = self._super_ppo(seed_for(self.seed, 11))
        valid = self._super_ppo(seed_for(self.seed, 23))
        valid.policy = train.policy  # one supernet acting in both sets of environments
        hp = self.hp
        batch, passes, rollouts = int(hp["batch_size"]), int(hp["n_epochs"]), int(self.cfg.supernet.rollouts)

        def loss(model: Any, b: Any) -> torch.Tensor:
            return ppo_loss(model, b, float(hp["clip_range"]), float(hp["ent_coef"]), float(hp["vf_coef"]), self.info.discrete)

        def score(model: Any, _loader: Any) -> float:
            return float(np.mean(evaluate(model, self.env_id, int(self.trainer_cfg.curve_episodes), ESTIMATE_SEED)))

        return OneShotProblem(
            train.policy,
            RolloutLoader(train, batch, passes, rollouts, seed_for(self.seed, 11)),
            # as many held-out batches as training ones: DARTS cycles through them without repeating
            RolloutLoader(valid, batch, passes, rollouts, seed_for(self.seed, 23)),
            loss,
            score,
            device=self.device,
            space=self.space,
        )

    # ---- outputs
    def write_outputs(self, run_dir: str | Path) -> list[str]:
        """The learning curves (``curve.png``) and, with ``task.gif``, one episode of the searched policy (``episode.gif``)."""
        from tasks.rl.play import draw_curves, record_gif

        names = []
        if self.curves:
            draw_curves(self.curves, self.threshold, Path(run_dir) / "curve.png", self.env_id)
            names.append("curve.png")
        if bool(self.cfg.get("gif", True)) and "searched" in self.trained:
            if record_gif(self.trained["searched"].policy, self.env_id, Path(run_dir) / "episode.gif", seed=EVAL_SEED):
                names.append("episode.gif")
        return names
