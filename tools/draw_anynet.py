"""Draw the AnyNet design-space figure (Radosavovic et al., 2020).

Writes img/anynet.svg (relative to the repository root), or the file given
with --out. Standard library only.

Four panels, left to right: the whole network, its body, one stage, and the
two variants (stride 1 / stride 2) of the ResNeXt-style block used in a stage.
Text may contain subscripts written as ``c_{i-1}``.

Usage (from the repository root): python -m tools.draw_anynet [--out FILE]
"""

import argparse
import os
import re
from xml.sax.saxutils import escape

W, H = 1100, 420
FONT = "DejaVu Sans, Arial, sans-serif"
STROKE = "#444444"
FRAME_FILL, FRAME_STROKE = "#fafafa", "#cccccc"
STEM, STAGE, HEAD = "#dbe9f6", "#e3f1df", "#fbe5d6"
CONV, BLOCK, IMAGE = "#ececec", "#efefef", "#dbe9f6"

# Panel frames: (x, width). All frames share the same top and bottom.
PANELS = [(12, 176), (206, 176), (400, 176), (594, 494)]
FRAME_TOP, FRAME_BOTTOM = 42, 372

out = []


def rich(text, size):
    """Turn 'c_{i-1}/b_{i}' into SVG text content with subscript tspans."""
    parts = []
    for plain, sub in re.findall(r"([^_]+)|_\{([^}]*)\}", text):
        if plain:
            parts.append(escape(plain))
        else:
            parts.append('<tspan baseline-shift="sub" font-size="%g">%s</tspan>'
                         % (round(size * 0.72, 1), escape(sub)))
    return "".join(parts)


def text(x, y, s, size=12, anchor="middle", weight="normal", fill="#222222",
         extra=""):
    out.append('<text x="%g" y="%g" font-size="%d" text-anchor="%s" '
               'font-weight="%s" fill="%s"%s>%s</text>'
               % (x, y, size, anchor, weight, fill, extra, rich(s, size)))


def box(cx, top, w, h, lines, fill, size=12, rx=4):
    """Rounded box centred horizontally at cx with one or more text lines."""
    out.append('<rect x="%g" y="%g" width="%g" height="%g" rx="%g" '
               'fill="%s" stroke="%s" stroke-width="1.2"/>'
               % (cx - w / 2, top, w, h, rx, fill, STROKE))
    lead = size + 2
    first = top + h / 2 - (len(lines) - 1) * lead / 2 + size * 0.36
    for k, line in enumerate(lines):
        text(cx, first + k * lead, line, size)


def line(points, arrow=True, dash=None):
    d = " ".join("%s%g,%g" % ("M" if k == 0 else "L", x, y)
                 for k, (x, y) in enumerate(points))
    out.append('<path d="%s" fill="none" stroke="%s" stroke-width="1.3"%s%s/>'
               % (d, STROKE, ' marker-end="url(#arrow)"' if arrow else "",
                  ' stroke-dasharray="%s"' % dash if dash else ""))


def arrow(x, y1, y2, label=None, size=12):
    """Vertical arrow with an optional label to its left."""
    line([(x, y1), (x, y2)])
    if label:
        text(x - 8, (y1 + y2) / 2 + size * 0.36, label, size, anchor="end")


def stack(cx, items, top=FRAME_TOP, bottom=FRAME_BOTTOM):
    """Lay out a vertical chain of items, centred between top and bottom.

    Items are ('arrow', length, label), ('box', height, lines, fill, width),
    ('dots', height) or ('space', height). Returns the y extent of each item.
    """
    total = sum(item[1] for item in items)
    y = top + (bottom - top - total) / 2
    spans = []
    for item in items:
        kind, h = item[0], item[1]
        if kind == "arrow":
            arrow(cx, y, y + h, item[2])
        elif kind == "box":
            box(cx, y, item[4], h, item[2], item[3])
        elif kind == "dots":
            text(cx, y + h / 2 + 5, "\u22ee", 14)
        spans.append((y, y + h))
        y += h
    return spans


def frame(k, caption):
    x, w = PANELS[k]
    out.append('<rect x="%g" y="%g" width="%g" height="%g" rx="8" fill="%s" '
               'stroke="%s" stroke-width="1"/>'
               % (x, FRAME_TOP, w, FRAME_BOTTOM - FRAME_TOP, FRAME_FILL,
                  FRAME_STROKE))
    text(x + w / 2, FRAME_TOP - 10, caption, 14, weight="bold")
    return x + w / 2 + 22          # column centre, leaving room for labels


def image_icon(cx, top, w=48, h=36):
    """A tiny 'photo': frame, sun and two hills."""
    x0, y0 = cx - w / 2, top
    out.append('<rect x="%g" y="%g" width="%g" height="%g" rx="3" fill="%s" '
               'stroke="%s" stroke-width="1.2"/>' % (x0, y0, w, h, IMAGE, STROKE))
    out.append('<circle cx="%g" cy="%g" r="4" fill="#f4c542"/>'
               % (x0 + w - 12, y0 + 10))
    out.append('<path d="M%g,%g L%g,%g L%g,%g L%g,%g L%g,%g Z" fill="#8fbf7f"/>'
               % (x0 + 3, y0 + h - 3, x0 + 17, y0 + 14, x0 + 27, y0 + 24,
                  x0 + 33, y0 + 19, x0 + w - 3, y0 + h - 3))


def network_panel():
    cx = frame(0, "network")
    spans = stack(cx, [("space", 36),                    # the input image
                       ("arrow", 38, "(3, r)"),
                       ("box", 30, ["stem"], STEM, 92),
                       ("arrow", 38, "(c_{0}, r/2)"),
                       ("box", 30, ["body"], STAGE, 92),
                       ("arrow", 38, "(c_{4}, r/32)"),
                       ("box", 30, ["head"], HEAD, 92),
                       ("arrow", 38, "(n)"),
                       ("space", 20)])                   # "n classes"
    image_icon(cx, spans[0][0])
    text(cx, spans[-1][0] + 16, "n classes", 12)


def body_panel():
    cx = frame(1, "body")
    items = [("arrow", 34, "(c_{0}, r/2)")]
    for i in range(1, 5):
        items.append(("box", 30, ["stage %d" % i], STAGE, 92))
        items.append(("arrow", 34, "(c_{%d}, r/%d)" % (i, 2 ** (i + 1))))
    stack(cx, items)


def stage_panel():
    cx = frame(2, "stage i")
    stack(cx, [("arrow", 36, "(c_{i-1}, r)"),
               ("box", 40, ["block 1", "(stride 2)"], BLOCK, 92),
               ("arrow", 36, "(c_{i}, r/2)"),
               ("box", 30, ["block 2"], BLOCK, 92),
               ("arrow", 36, "(c_{i}, r/2)"),
               ("dots", 24),
               ("arrow", 26, None),
               ("box", 30, ["block d_{i}"], BLOCK, 92),
               ("arrow", 36, "(c_{i}, r/2)")])


def x_block(cx, stride, c_in):
    """One ResNeXt (X) block, top to bottom, with its shortcut on the right."""
    size = 11
    bw = 104                      # width of the main-path boxes
    xs = cx + bw / 2 + 42         # x of the shortcut path
    y = 74
    text(cx + 35, y - 12, "stride %d" % stride, 12, weight="bold")

    def conv(h, lines, fill=CONV):
        nonlocal y
        box(cx, y, bw, h, lines, fill, size)
        y += h

    def step(h, label=None):
        nonlocal y
        line([(cx, y), (cx, y + h)])
        if label:
            text(cx - 8, y + h / 2 + 4, label, size + 1, anchor="end")
        y += h

    split = y + 9
    step(24, c_in)
    conv(30, ["1\u00d71 conv", "BN, ReLU"])
    step(24, "c_{i}/b_{i}")
    g_top = y
    conv(56, ["3\u00d73 group conv", "group width g_{i}",
              "stride %d" % stride, "BN, ReLU"])
    g_mid = (g_top + y) / 2
    step(24, "c_{i}/b_{i}")
    conv(30, ["1\u00d71 conv", "BN"])
    step(20, "c_{i}")
    r = 9                          # the (+) node
    join = y + r
    out.append('<circle cx="%g" cy="%g" r="%g" fill="white" stroke="%s" '
               'stroke-width="1.2"/>' % (cx, join, r, STROKE))
    line([(cx - 5, join), (cx + 5, join)], arrow=False)
    line([(cx, join - 5), (cx, join + 5)], arrow=False)
    y += 2 * r
    step(14)
    conv(22, ["ReLU"], "white")
    step(24, "c_{i}")

    # Shortcut: branch off the input, run down the right, enter the (+).
    out.append('<circle cx="%g" cy="%g" r="2.5" fill="%s"/>' % (cx, split, STROKE))
    if stride == 1:
        line([(cx, split), (xs, split), (xs, join), (cx + r, join)])
        text(xs + 14, g_mid, "identity", 11, fill="#555555",
             extra=' transform="rotate(90 %g %g)"' % (xs + 14, g_mid))
    else:
        sh = 44
        line([(cx, split), (xs, split), (xs, g_mid - sh / 2)])
        box(xs, g_mid - sh / 2, 70, sh, ["1\u00d71 conv", "stride 2", "BN"],
            CONV, size)
        line([(xs, g_mid + sh / 2), (xs, join), (cx + r, join)])


def blocks_panel():
    x, w = PANELS[3]
    frame(3, "blocks")
    # Each block drawing is roughly centred 35 px right of its main column.
    x_block(x + w / 4 - 35, 1, "c_{i}")
    x_block(x + 3 * w / 4 - 35, 2, "c_{i-1}")


def main(argv=None):
    default = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "img", "anynet.svg")
    parser = argparse.ArgumentParser(prog="python -m tools.draw_anynet",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=default, help="the SVG file to write "
                        "(default: img/anynet.svg)")
    path = parser.parse_args(argv).out
    out.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
               'viewBox="0 0 %d %d">' % (W, H, W, H))
    out.append('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" '
               'markerWidth="7" markerHeight="7" orient="auto">'
               '<path d="M0,0 L10,5 L0,10 Z" fill="%s"/></marker></defs>'
               % STROKE)
    out.append('<rect width="100%" height="100%" fill="white"/>')
    out.append('<g font-family="%s">' % FONT)
    network_panel()
    body_panel()
    stage_panel()
    blocks_panel()
    text(W / 2, 402, "design choices per stage i: depth d_{i}, width c_{i}, "
         "bottleneck ratio b_{i}, group width g_{i}", 13)
    out.append("</g></svg>")

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
