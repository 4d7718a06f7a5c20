"""`glt convert-attributes FILE --trust-pickle --out attrs.npz`: convert the COCO-Attributes joblib pickle, once,
into a safe .npz (plain arrays, read without unpickling) that `glt build coco --attributes` accepts."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "convert-attributes",
        help="convert the COCO-Attributes pickle into a safe .npz (for glt build coco)",
        description="Read the COCO-Attributes joblib pickle (cocottributes_py3.jbl) and write its objects (patch id, "
        "COCO annotation id, 204 presence bits: score > 0.5) and attribute names into a .npz that is read "
        "without unpickling. Unpickling runs code from the file, so it needs --trust-pickle.",
    )
    p.add_argument("file", metavar="FILE", help="the COCO-Attributes pickle (or an .npz, to check or copy it)")
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--trust-pickle", action="store_true", help="allow unpickling FILE (only for a file you trust)")
    p.set_defaults(func=run)


def run(args) -> int:
    from glt.builders.coco_attributes import convert_attributes
    from glt.cli.common import check_out_file

    check_out_file(args.out)
    attrs = convert_attributes(args.file, args.out, trust_pickle=args.trust_pickle)
    present = attrs.present.sum(axis=1)
    print(
        f"wrote {args.out}: {len(attrs)} objects, {attrs.num_attributes} attributes "
        f"({present.mean():.1f} present per object on average, {int((present == 0).sum())} with none)"
    )
    return 0
