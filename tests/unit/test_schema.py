import pytest

from taxifare_cli.core.schema import DatasetName, check_part, parse_dataset_name


@pytest.mark.parametrize(
    ("name", "split", "part", "is_month"),
    [("train_10k", "train", "10k", False), ("val_feb", "val", "feb", True), ("TRAIN_ALL", "train", "all", False)],
)
def test_parse_dataset_name(name: str, split: str, part: str, is_month: bool) -> None:
    parsed = parse_dataset_name(name)
    assert (parsed.split, parsed.part, parsed.is_month) == (split, part, is_month)
    assert str(parsed) == f"{split}_{part}"


@pytest.mark.parametrize("bad", ["test_10k", "train_10q", "train", "val_jul", "../train_1k"])
def test_parse_dataset_name_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        parse_dataset_name(bad)


def test_month_number() -> None:
    assert DatasetName("val", "jun").month_number == 6


def test_check_part_names_the_choices() -> None:
    assert check_part(" Feb ") == "feb"
    with pytest.raises(ValueError, match="sizes are 1k, 10k"):
        check_part("2k")
