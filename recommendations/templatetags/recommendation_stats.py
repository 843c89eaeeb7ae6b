"""Template tags of the staff model page's impressions and experiment tables."""
from django import template

from recommendations.impression_stats import wilson
from recommendations.rerank import DISCOVERY_LEVELS

register = template.Library()


@register.simple_tag
def ratio_ci(successes: int, trials: int) -> str:
    """"0.1234 [0.1100, 0.1380]": the proportion and its 95% Wilson interval."""
    interval = wilson(successes, trials)
    if interval is None:
        return "–"
    return f"{successes / trials:.4f} [{interval[0]:.4f}, {interval[1]:.4f}]"


@register.simple_tag
def dict_get(mapping, key):
    return mapping.get(key)


@register.simple_tag
def arm_serves(experiment, arm: str) -> str:
    """What an arm serves, e.g. "v3, dial: Hidden gems"."""
    version = experiment.a_version_id if arm == "A" else experiment.b_version_id
    level = experiment.a_discovery if arm == "A" else experiment.b_discovery
    parts = [f"v{version}" if version else "the served version"]
    if level is not None:
        parts.append(f"dial: {DISCOVERY_LEVELS[level]}")
    return ", ".join(parts)
