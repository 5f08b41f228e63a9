"""Linear scores of every window of a level for several templates at once: one matrix product per level.

A template's HOG weights, cut per block offset ``(i, j)`` of its window, are
``(wb_rows * wb_cols, block_dim)``; the weights of all templates are stacked
into one matrix, and the response of every block of the level's grid to every
offset of every template is one product, ``stacked @ blocks.T``. A window's
score is the sum over its offsets of the response of block ``(r + i, c + j)``
to offset ``(i, j)``: read from the responses as a strided view whose two
outer axes walk the offsets and whose inner axis is contiguous, so the sum
adds contiguous rows (no Python loop over offsets or windows).

:func:`classic_loc.features.hog.score_windows` computes the same scores for one
template; it is the reference the tests check this against. numpy only.
"""

import numpy as np

__all__ = ["WindowScorer"]


class WindowScorer:
    """The HOG parts of several templates' weights, stacked to score a level in one product.

    Parameters
    ----------
    windows : list of (wb_rows, wb_cols)
        Blocks per window of each template (``window_cells - block + 1`` per axis).
    weights : list of (wb_rows * wb_cols * block_dim,) arrays
        Each template's HOG weights in :func:`~classic_loc.features.hog.window_features` order.
    block_dim : int
        Values per block of the grid (31 for FHOG, ``block**2 * n_bins`` for Dalal-Triggs).
    """

    def __init__(self, windows, weights, block_dim):
        self.windows = [tuple(int(v) for v in w) for w in windows]
        self.block_dim = int(block_dim)
        rows = [w[0] * w[1] for w in self.windows]
        self.offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.intp)
        parts = []
        for (wbr, wbc), w in zip(self.windows, weights):
            w = np.asarray(w, dtype=np.float32)
            if w.shape != (wbr * wbc * self.block_dim,):
                raise ValueError(f"weights of shape {w.shape} do not fit a window of {wbr}x{wbc} blocks of "
                                 f"{self.block_dim} values")
            parts.append(w.reshape(wbr * wbc, self.block_dim))
        self.stacked = np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros((0, self.block_dim),
                                                                                        np.float32))
        self._subsets = {}

    def _rows(self, which):
        """The stacked weights of the templates ``which`` and their row offsets in it (made once per subset)."""
        key = tuple(which)
        if key not in self._subsets:
            if len(key) == len(self.windows) and key == tuple(range(len(self.windows))):
                self._subsets[key] = (self.stacked, self.offsets[:-1])
            else:
                sel = np.concatenate([np.arange(self.offsets[k], self.offsets[k + 1]) for k in key])
                sizes = [self.offsets[k + 1] - self.offsets[k] for k in key]
                self._subsets[key] = (np.ascontiguousarray(self.stacked[sel]),
                                      np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp))
        return self._subsets[key]

    def scores(self, grid, which):
        """Scores (n_pos_rows, n_pos_cols) float32 of every window of templates ``which`` on ``grid``.

        Parameters
        ----------
        grid : (n_blocks_rows, n_blocks_cols, ...) float32 ndarray
            A level's HOG grid, ``block_dim`` values per block.
        which : sequence of int
            Template indices.

        Returns
        -------
        list of ndarray, one per template of ``which``; an empty (0, 0)-sized array
        for a template whose window is larger than the level. No bias is added.
        """
        nbr, nbc = grid.shape[:2]
        n_blocks = nbr * nbc
        which = list(which)
        out = [None] * len(which)
        live = [i for i, k in enumerate(which) if self.windows[k][0] <= nbr and self.windows[k][1] <= nbc]
        for i in set(range(len(which))) - set(live):
            wbr, wbc = self.windows[which[i]]
            out[i] = np.zeros((max(nbr - wbr + 1, 0), max(nbc - wbc + 1, 0)), np.float32)
        if not live:
            return out
        stacked, starts = self._rows([which[i] for i in live])
        blocks = np.ascontiguousarray(grid, dtype=np.float32).reshape(n_blocks, self.block_dim)
        # responses, with a tail of zeros: the strided reads of the last row of windows run past the end
        # of a template's responses by at most one row of blocks (the columns dropped below)
        flat = np.zeros(stacked.shape[0] * n_blocks + nbc + 1, np.float32)
        response = flat[:stacked.shape[0] * n_blocks].reshape(stacked.shape[0], n_blocks)
        np.matmul(stacked, blocks.T, out=response)
        item = flat.itemsize
        for i, start in zip(live, starts):
            wbr, wbc = self.windows[which[i]]
            n_r, n_c = nbr - wbr + 1, nbc - wbc + 1
            # score.flat[r * nbc + c] = sum_{a, b} response[start + a * wbc + b].flat[(r + a) * nbc + c + b]
            # (np.ndarray on the buffer: as_strided costs ~25 us a call; the constructor checks the bounds)
            view = np.ndarray((wbr, wbc, n_r * nbc), np.float32, flat, start * n_blocks * item,
                              ((wbc * n_blocks + nbc) * item, (n_blocks + 1) * item, item))
            out[i] = view.sum(axis=(0, 1)).reshape(n_r, nbc)[:, :n_c]
        return out
