"""The memory/gain frontier of a scheme search as a PNG, drawn with Pillow (no plotting library)."""
from PIL import Image, ImageDraw

from host_tools.atomic import atomic_path

W, H, L, R, T, B = 720, 440, 80, 20, 40, 60     # image size and margins


def draw(path, points, chosen, budget, title="", measured=()):
    """points: [(memory bytes, gain %)] of the best scheme at each budget; chosen: one such point;
    measured: [(memory bytes, gain %)] simulated gains of the verified schemes (red crosses)."""
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    xs = [p[0] for p in points] + [p[0] for p in measured] + [chosen[0], budget]
    ys = [p[1] for p in points] + [p[1] for p in measured] + [chosen[1], 0.0]
    x0, x1 = min(xs) * 0.95, max(xs) * 1.05
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.1 or 1.0
    y0, y1 = y0 - pad, y1 + pad

    def px(x, y):
        return (L + (x - x0) / (x1 - x0) * (W - L - R), H - B - (y - y0) / (y1 - y0) * (H - T - B))

    d.rectangle([L, T, W - R, H - B], outline="black")
    for i in range(6):                                    # ticks: memory in KB, gain in points
        x = x0 + (x1 - x0) * i / 5
        X, _ = px(x, y0)
        d.line([X, H - B, X, H - B + 5], fill="black")
        d.text((X - 15, H - B + 8), f"{x / 1024:.0f}", fill="black")
        y = y0 + (y1 - y0) * i / 5
        _, Y = px(x0, y)
        d.line([L - 5, Y, L, Y], fill="black")
        d.text((L - 45, Y - 6), f"{y:+.1f}", fill="black")
    d.text((W // 2 - 90, H - 25), "device memory (workspace, KB)", fill="black")
    d.text((8, T - 14), "predicted accuracy gain over the classifier alone (points)", fill="black")
    if title:
        d.text((L, 2), title, fill="black")
    bx, _ = px(budget, y0)
    d.line([bx, T, bx, H - B], fill=(200, 0, 0))
    d.text((bx + 4, T + 4), "budget", fill=(200, 0, 0))
    pts = sorted(points)
    for a, b in zip(pts, pts[1:]):                        # a step: gain holds until the next scheme
        (ax, ay), (bx_, by) = px(*a), px(*b)
        d.line([ax, ay, bx_, ay, bx_, by], fill=(0, 90, 200), width=2)
    for p in pts:
        X, Y = px(*p)
        d.ellipse([X - 3, Y - 3, X + 3, Y + 3], fill=(0, 90, 200))
    for p in measured:
        X, Y = px(*p)
        d.line([X - 4, Y - 4, X + 4, Y + 4], fill=(200, 0, 0), width=2)
        d.line([X - 4, Y + 4, X + 4, Y - 4], fill=(200, 0, 0), width=2)
    if measured:
        d.text((W - R - 250, H - B - 16), "x: simulated gain of the verified schemes", fill=(200, 0, 0))
    X, Y = px(*chosen)
    d.ellipse([X - 6, Y - 6, X + 6, Y + 6], outline=(200, 0, 0), width=2)
    with atomic_path(path, ".png") as tmp:
        img.save(tmp)
