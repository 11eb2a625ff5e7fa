from __future__ import annotations

import pytest

from spaces import CASES, CaseError, get_case


def test_unknown_case_names_the_choices():
    with pytest.raises(CaseError) as info:
        get_case("conv2d_dying_relu")
    message = str(info.value)
    assert "unknown case 'conv2d_dying_relu'" in message
    assert all(name in message for name in CASES)


def test_user_case_from_a_file(example_case_ref):
    case = get_case(example_case_ref)
    assert case.name == "narrow_code"
    assert case.fixed_config()["hidden_size"] == 16


TINY_CASE = """
import torch
from torch import nn
from spaces import FACTORS, Budget, Case, Data

class Tiny(Case):
    name = "tiny"
    space = {"lr": FACTORS["lr"]}
    baseline = {"lr": 1e-2}
    budgets = {"quick": Budget(epochs=3)}

    def make_data(self, seed, budget, config):
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(seed))
        return Data(x, x.clone())

    def build_model(self, config):
        return nn.Linear(4, 4)

INSTANCE = Tiny()
"""


def test_user_case_from_a_module(monkeypatch, tmp_path):
    (tmp_path / "team_cases.py").write_text(TINY_CASE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert get_case("team_cases:Tiny").name == "tiny"  # a class
    assert get_case("team_cases:INSTANCE").name == "tiny"  # or an instance


@pytest.mark.parametrize(
    ("source", "ref", "message"),
    [
        (None, "{dir}/missing.py:X", "does not exist"),
        ("x = 1\n", "{file}:Nope", "defines no 'Nope'"),
        ("x = 1\n", "{file}:x", "must be a spaces.Case subclass or instance, got int"),
        ("class Foo:\n    pass\n", "{file}:Foo", "must be a spaces.Case subclass or instance, got class Foo"),
        (TINY_CASE, "{file}", "a case in a file is named {file}:NAME; cases found there: ['INSTANCE', 'Tiny']"),
        ("import not_a_module_anywhere\n", "{file}:X", "cannot import"),
        ("from spaces import Case\nclass Half(Case):\n    name = 'half'\n", "{file}:Half", "is not valid"),
        (
            "from spaces import FACTORS, Budget, Case\n"
            "class Bad(Case):\n"
            "    name = 'bad'\n"
            "    space = {'lr': FACTORS['lr']}\n"
            "    baseline = {'lr': 1e-3, 'activation': 'relu'}\n"
            "    budgets = {'quick': Budget(1)}\n",
            "{file}:Bad",
            "baseline must give one value per factor",
        ),
        (None, "no_such_module_xyz:Case", "cannot import 'no_such_module_xyz'"),
    ],
)
def test_loading_errors_are_one_clear_line(tmp_path, source, ref, message):
    path = tmp_path / "user_case.py"
    if source is not None:
        path.write_text(source)
    with pytest.raises(CaseError) as info:
        get_case(ref.format(dir=tmp_path, file=path))
    assert message.format(file=path) in str(info.value)
    assert "\n" not in str(info.value)
