"""The AI-demand factor with its burst regime (MODEL §1)."""

from ._jit import jit


@jit
def factor_path(eps, phi, innovation_scale, burst_month, burst_shift, out):
    """Fill ``out[t] = X_t`` for t = 0..T.

    Parameters
    ----------
    eps : f8[T+1]
        eps[0] is the stationary start Y_0 ~ N(0,1); eps[1:] are the innovations.
    phi, innovation_scale : float
        φ and sqrt(1 − φ²).
    burst_month : int
        B; the mean shifts by ``burst_shift`` from month B on.
    out : f8[T+1]
    """
    y = eps[0]
    out[0] = y
    for t in range(1, out.shape[0]):
        y = phi * y + innovation_scale * eps[t]
        out[t] = y + burst_shift if t >= burst_month else y
