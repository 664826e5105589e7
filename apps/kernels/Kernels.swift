// The compute kernels of the paper's machine-learning applications, shared by each plain
// threaded version and its Crucial port (so Table 4 does not count them): k-means'
// assignment step and logistic regression's gradient, on OpenBLAS (dgemm, dgemv), as
// numpy runs them.
import COpenBLAS
import Foundation

/// A row-major matrix of doubles.
public struct DenseMatrix: Sendable {
    public let rows: Int
    public let cols: Int
    public let values: [Double]

    /// The matrix whose rows are `rows` (all of one length).
    public init(_ rows: [[Double]]) {
        self.rows = rows.count
        self.cols = rows.first?.count ?? 0
        self.values = rows.flatMap { $0 }
    }
}

public enum Kernels {
    /// Each thread of an application computes on one core: BLAS's own threads would compete.
    private static let oneThread: Void = openblas_set_num_threads(1)

    /// The squared norm of each row.
    public static func rowNorms(_ m: DenseMatrix) -> [Double] {
        m.values.withUnsafeBufferPointer { x in
            (0..<m.rows).map { i in cblas_ddot(Int32(m.cols), x.baseAddress! + i * m.cols, 1, x.baseAddress! + i * m.cols, 1) }
        }
    }

    /// k-means' assignment step: each point's nearest centroid (by |x|² - 2 x·c + |c|²,
    /// the products from one dgemm), the sum and count of each cluster's points, and how
    /// many points changed cluster (`membership` is updated).
    public static func assign(
        _ points: DenseMatrix, norms: [Double], centroids: [[Double]], membership: inout [Int]
    ) -> (sums: [[Double]], counts: [Int], changed: Int64) {
        _ = oneThread
        let n = points.rows, d = points.cols, k = centroids.count
        let c = DenseMatrix(centroids)
        let cNorms = rowNorms(c)
        var products = [Double](repeating: 0, count: n * k)
        points.values.withUnsafeBufferPointer { x in
            c.values.withUnsafeBufferPointer { cp in
                products.withUnsafeMutableBufferPointer { g in
                    cblas_dgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(k), Int32(d), 1, x.baseAddress, Int32(d), cp.baseAddress, Int32(d), 0,
                        g.baseAddress, Int32(k))
                }
            }
        }
        var sums = [Double](repeating: 0, count: k * d)
        var counts = [Int](repeating: 0, count: k)
        var changed: Int64 = 0
        points.values.withUnsafeBufferPointer { x in
            sums.withUnsafeMutableBufferPointer { s in
                for i in 0..<n {
                    var best = 0, bestDistance = Double.infinity
                    for j in 0..<k {
                        let distance = norms[i] - 2 * products[i * k + j] + cNorms[j]
                        if distance < bestDistance { (best, bestDistance) = (j, distance) }
                    }
                    if membership[i] != best { changed += 1 }
                    membership[i] = best
                    counts[best] += 1
                    cblas_daxpy(Int32(d), 1, x.baseAddress! + i * d, 1, s.baseAddress! + best * d, 1)
                }
            }
        }
        return ((0..<k).map { Array(sums[($0 * d)..<(($0 + 1) * d)]) }, counts, changed)
    }

    /// Logistic regression's gradient on `x` (one row a point) with labels `y` (0 or 1) at
    /// weights `w`: Σ (σ(x·w) - y) x and the summed log loss, from two dgemv.
    public static func logisticGradient(_ x: DenseMatrix, _ y: [Double], _ w: [Double]) -> (gradient: [Double], loss: Double) {
        _ = oneThread
        let n = x.rows, d = x.cols
        var z = [Double](repeating: 0, count: n)
        var gradient = [Double](repeating: 0, count: d)
        var loss = 0.0
        x.values.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                z.withUnsafeMutableBufferPointer { zp in
                    cblas_dgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(d), 1, xp.baseAddress, Int32(d), wp.baseAddress, 1, 0, zp.baseAddress, 1)
                }
            }
            for i in 0..<n {
                let p = 1 / (1 + exp(-z[i]))
                loss -= y[i] * log(max(p, 1e-12)) + (1 - y[i]) * log(max(1 - p, 1e-12))
                z[i] = p - y[i]
            }
            z.withUnsafeBufferPointer { rp in
                gradient.withUnsafeMutableBufferPointer { gp in
                    cblas_dgemv(CblasRowMajor, CblasTrans, Int32(n), Int32(d), 1, xp.baseAddress, Int32(d), rp.baseAddress, 1, 0, gp.baseAddress, 1)
                }
            }
        }
        return (gradient, loss)
    }
}
