"""Drawing detections on images (OpenCV only, usable on the prediction path)."""

import cv2
import numpy as np

__all__ = ["draw_detections", "COLORS"]

# distinct RGB colours, one per class index (cycled)
COLORS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
          (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40), (128, 0, 0)]


def draw_detections(image, boxes, labels, scores, classes, thickness=2):
    """A copy of ``image`` (RGB or gray) as RGB with each box, class name and score drawn.

    Parameters
    ----------
    image : ndarray (rows, cols) or (rows, cols, 3)
    boxes : (N, 4) xyxy
    labels : (N,) class indices
    scores : (N,)
    classes : sequence of str

    Returns
    -------
    ndarray (rows, cols, 3) uint8, RGB
    """
    out = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image.copy())
    scale = max(0.4, min(out.shape[:2]) / 800)
    for box, label, score in zip(np.asarray(boxes), np.asarray(labels), np.asarray(scores)):
        color = COLORS[int(label) % len(COLORS)]
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), color, thickness)
        text = f"{classes[int(label)]} {score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 3 if y1 - th - base - 3 >= 0 else y1 + th + 3
        cv2.rectangle(out, (x1, ty - th - 2), (x1 + tw + 2, ty + base - 1), color, -1)
        cv2.putText(out, text, (x1 + 1, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
