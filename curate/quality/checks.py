"""Checks from the catalog's fields: DICOM sanity and patient leakage between splits."""

from __future__ import annotations

import pandas as pd

from curate.quality.rules import FlagSet, Thresholds

__all__ = ["dicom_flags", "leakage_flags", "duplicate_flags", "patient_leakage"]


def _column(catalog: pd.DataFrame, name: str) -> pd.Series:
    if name in catalog.columns:
        return catalog[name].astype("string").str.strip().str.upper()
    return pd.Series(pd.NA, index=catalog.index, dtype="string")


def dicom_flags(catalog: pd.DataFrame, t: Thresholds, flags: FlagSet) -> None:
    """Modality, body part, laterality against side, patient id, MONOCHROME1, burned-in annotation."""
    modality = _column(catalog, "modality")
    allowed = set(t.allowed_modalities)
    flags.add(
        "wrong_modality",
        modality.notna() & ~modality.isin(allowed),
        "modality " + modality.fillna("") + f" is not one of {', '.join(sorted(allowed))}",
    )
    if t.expected_body_parts:
        body = _column(catalog, "body_part")
        expected = set(t.expected_body_parts)
        flags.add(
            "wrong_body_part",
            body.notna() & ~body.isin(expected),
            "body part " + body.fillna("") + f" is not {' or '.join(sorted(expected))}",
        )
    laterality, side = _column(catalog, "laterality"), _column(catalog, "side")
    known = laterality.isin(["L", "R"]) & side.isin(["L", "R"])
    flags.add(
        "laterality_mismatch",
        known & (laterality != side),
        "DICOM laterality " + laterality.fillna("") + " contradicts side " + side.fillna("") + " of the catalog",
    )
    patient = catalog["patient_id"].astype("string")
    flags.add("missing_patient_id", patient.isna() | (patient.str.strip() == ""), "no patient id")
    photometric = _column(catalog, "photometric")
    flags.add("monochrome1", photometric == "MONOCHROME1", "MONOCHROME1, inverted by the decoder (informational)")
    burned = _column(catalog, "burned_in_annotation")
    flags.add(
        "burned_in_annotation",
        burned == "YES",
        "DICOM BurnedInAnnotation is YES: names or dates may be written in the pixels; review before export",
    )


def patient_leakage(catalog: pd.DataFrame) -> pd.DataFrame:
    """Patients present in more than one official split, with the splits and their sample counts."""
    if "official_split" not in catalog.columns:
        return pd.DataFrame(columns=["patient_id", "splits", "samples"])
    known = catalog[["patient_id", "official_split"]].dropna().astype(str)
    pairs = known.drop_duplicates()  # one row per (patient, split): a grouped lambda per patient is slow
    n_splits = pairs["patient_id"].value_counts(sort=False)
    crossing = pairs[pairs["patient_id"].isin(n_splits.index[n_splits.to_numpy() > 1])]
    splits = crossing.sort_values("official_split").groupby("patient_id", sort=True)["official_split"].agg(", ".join)
    counts = known[known["patient_id"].isin(splits.index)].groupby("patient_id").size()
    return pd.DataFrame(
        {"patient_id": splits.index, "splits": splits.to_numpy(), "samples": counts.loc[splits.index].to_numpy()}
    ).reset_index(drop=True)


def leakage_flags(catalog: pd.DataFrame, flags: FlagSet) -> None:
    """Flag every sample of a patient that appears in more than one official split."""
    leaks = patient_leakage(catalog)
    if leaks.empty:
        flags.add("patient_cross_split", pd.Series(False, index=catalog.index), "")
        return
    splits = catalog["patient_id"].astype("string").map(dict(zip(leaks["patient_id"], leaks["splits"])))
    flags.add(
        "patient_cross_split",
        splits.notna(),
        lambda f: "patient " + f["patient_id"].astype(str) + " is in " + f["splits"].astype(str),
        catalog[["patient_id"]].assign(splits=splits),
    )


def duplicate_flags(dups: pd.DataFrame, catalog: pd.DataFrame, flags: FlagSet) -> None:
    """Flags for duplicate members that are not kept, label conflicts and groups crossing splits."""
    redundant = dups["dup_keep"].eq(False).fillna(False).astype(bool)
    exact = redundant & dups["dup_kind"].eq("exact").fillna(False).astype(bool)
    near = redundant & dups["dup_kind"].eq("near").fillna(False).astype(bool)
    in_group = dups["dup_group"].notna()
    path_of = dict(zip(catalog["sample_id"], catalog["path"]))
    grouped = dups[in_group]  # reasons are written for group members only, a small share of the rows
    group = grouped["dup_group"].astype(object)
    info = pd.DataFrame(
        {
            "kept": _text(grouped["dup_of"].astype(object).map(path_of)),
            "why": _text(grouped["dup_keep_reason"]),
            "similarity": grouped["dup_similarity"].astype(object).map(lambda v: "" if pd.isna(v) else f"{v:.2f}"),
            "group": _text(group),
            "labels": _text(group.map(_members(catalog["label"][in_group], group, dups["dup_label_conflict"][in_group]))),
        },
        index=grouped.index,
    )
    flags.add("exact_duplicate", exact, lambda f: "same pixels as " + f["kept"] + " (kept: " + f["why"] + ")", info)
    flags.add(
        "near_duplicate",
        near,
        lambda f: "near duplicate of " + f["kept"] + " (similarity " + f["similarity"] + "; kept: " + f["why"] + ")",
        info,
    )
    flags.add(
        "duplicate_label_conflict",
        dups["dup_label_conflict"].astype(bool),
        lambda f: "duplicate group " + f["group"] + " holds labels " + f["labels"],
        info,
    )
    if "official_split" in catalog.columns:
        info["splits"] = _text(group.map(_members(catalog["official_split"][in_group], group, dups["dup_cross_split"][in_group])))
        flags.add(
            "duplicate_cross_split",
            dups["dup_cross_split"].astype(bool),
            lambda f: "duplicate group " + f["group"] + " spans splits " + f["splits"],
            info,
        )


def _members(values: pd.Series, group: pd.Series, wanted: pd.Series) -> dict:
    """Group id -> the distinct values of its members, joined, for the groups of the ``wanted`` rows.

    Only those groups' reasons show the values: most groups of a large archive
    agree, and joining every group's values costs seconds at 100,000 rows.
    """
    wanted = wanted.astype(bool)
    known = pd.DataFrame({"g": group, "v": values.astype("string")})[group.isin(group[wanted])].dropna()
    return known.groupby("g")["v"].agg(lambda s: ", ".join(sorted(set(s)))).to_dict()


def _text(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), "").astype(str)
