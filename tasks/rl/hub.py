"""What the hub knows of RL bundles: a flat observation (or a channel-first image) in, action logits or mean and the state value out."""

from __future__ import annotations

from typing import Any

from zoo.hub.facts import HUB_FACTS, HubFacts


@HUB_FACTS.register("rl")
class RLHub(HubFacts):
    name = "rl"
    export_rtol = 1e-5  # a few float32 layers: ONNX Runtime rounds differently in the last bits

    def input_shape(self, config: dict[str, Any]) -> tuple[int, ...]:
        shape = config["model"].get("obs_shape")  # image observations: (C, H, W)
        return tuple(int(v) for v in shape) if shape else (int(config["model"]["obs_dim"]),)

    def preprocessing(self, config: dict[str, Any]) -> dict[str, Any]:
        data = config.get("data") or {}
        model = config.get("model") or {}
        image = model.get("obs_shape")
        observation = (
            "the gymnasium image observation as float32, channels first, divided by "
            f"{data.get('obs_scaled_by', 1)} (as stable-baselines3 preprocesses it)"
            if image
            else "the gymnasium observation as float32, flattened (a Discrete observation one-hot); no normalisation"
        )
        return {
            "input_size": [int(v) for v in image] if image else [int(model.get("obs_dim", 0))],
            "environment": data.get("env"),
            "observation": observation,
            "outputs": (
                "action logits (N, actions) and state value (N,); the deterministic action is the argmax"
                if model.get("discrete", True)
                else "action mean (N, dims) and state value (N,); the deterministic action is the mean clipped to the action bounds"
            ),
        }

    def output_names(self) -> list[str]:
        return ["action", "value"]

    def metrics_note(self) -> str:
        return (
            "Measured over deterministic evaluation episodes on environment seeds that no training run or candidate "
            "evaluation used (the baseline: the hand-made policy of the run, trained with the same PPO settings, steps and seed)."
        )

    def headline(self, metrics: dict[str, Any]) -> str | None:
        if "test_mean_return" in metrics:
            return f"return {metrics['test_mean_return']:.1f}"
        return None

    def card_usage(self, ref: str) -> list[str]:
        return [
            "Watch it play (mean and std of the return over N episodes):",
            "",
            "```bash",
            f"python -m zoo mode=play checkpoint={ref} play.episodes=10",
            "```",
            "",
            "Use it in stable-baselines3 (a `PPO` object with this policy; `ppo.learn(...)` continues training):",
            "",
            "```python",
            "from tasks.rl.integrations.sb3 import to_ppo",
            f'ppo = to_ppo("{ref}")',
            'ppo.save("policy.zip")  # PPO.load("policy.zip") in any process',
            "```",
            "",
            "Fine-tune on another environment with the same spaces:",
            "",
            "```bash",
            f"python -m zoo task=rl mode=finetune checkpoint={ref} data.env=ENV_ID",
            "```",
            "",
        ]
