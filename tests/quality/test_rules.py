"""The flag collector: reasons are written for flagged rows only, and a flag added twice keeps both sets of rows."""

import pandas as pd

from curate.quality.rules import FlagSet, Thresholds, image_flags


def test_a_reason_function_sees_only_the_flagged_rows():
    frame = pd.DataFrame({"value": [0.05, 0.5, 0.01]}, index=[10, 11, 12])
    seen = []

    def reason(rows: pd.DataFrame) -> pd.Series:
        seen.append(rows.index.tolist())
        return "value " + rows["value"].map("{:.2f}".format)

    flags = FlagSet(frame.index)
    flags.add("low", frame["value"] < 0.1, reason, frame)
    table = flags.to_frame()
    assert seen == [[10, 12]]
    assert table["reasons"].tolist() == ["low: value 0.05", "", "low: value 0.01"]
    assert table["flag_low"].tolist() == [True, False, True]


def test_adding_a_flag_again_keeps_the_rows_and_reasons_of_the_first_time():
    index = pd.RangeIndex(3)
    flags = FlagSet(index)
    flags.add("odd", pd.Series([True, False, False], index=index), "first rule")
    flags.add("odd", pd.Series([True, True, False], index=index), "second rule")
    table = flags.to_frame()
    assert table["flag_odd"].tolist() == [True, True, False]
    assert table["reasons"].tolist() == ["odd: first rule", "odd: second rule", ""]


def test_image_flags_with_nothing_flagged_write_no_reasons():
    measures = pd.DataFrame(
        {
            "readable": [True, True],
            "error": [None, None],
            "error_detail": [None, None],
            "brightness_mean": [0.5, 0.52],
            "saturated_fraction": [0.0, 0.0],
            "contrast": [0.2, 0.21],
            "entropy": [7.0, 7.1],
            "dynamic_range": [0.8, 0.81],
            "sharpness": [1.0, 1.1],
            "border_fraction": [0.0, 0.0],
            "inversion_score": [-0.3, -0.31],
            "width": [224, 224],
            "height": [224, 224],
            "aspect_ratio": [1.0, 1.0],
        }
    )
    flags = FlagSet(measures.index)
    image_flags(measures, Thresholds(), flags)
    table = flags.to_frame()
    assert not table.filter(like="flag_").any().any()
    assert table["reasons"].tolist() == ["", ""]
