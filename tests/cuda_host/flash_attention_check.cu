// Host check (see run.sh): the fragment index maps of the fused attention kernel
// (attention_flash.cu). Emulates ldmatrix.x4 (plain and .trans) and mma.m16n8k16 from their PTX
// definitions on shared tiles laid out as the kernel lays them out, runs one warp's Q K^T and P V
// loops with the kernel's maps, and compares with plain matrix products (small integers: exact
// in float), for every head size and warp. Also checks that every ldmatrix phase and Q fragment
// load touches 32 distinct banks, and runs the kernel's block loop transcribed for the host
// (check_block_loop) against a direct softmax.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <vector>

#include "backends/cuda/attention_flash.cu"

using namespace kiln::cuda;

namespace {

struct Pair {
  float lo = 0, hi = 0;
};
using Regs4 = Pair[32][4];

// ldmatrix.sync.aligned.m8n8.x4[.trans].b16: lanes 8i..8i+7 address rows 0..7 of matrix i; lane
// t receives in register i the elements (row t/4, cols 2(t%4), 2(t%4)+1) of matrix i, or with
// .trans (rows 2(t%4), 2(t%4)+1, col t/4).
void ldmatrix(const std::vector<float>& smem, const int (&addr)[32], bool trans, Regs4& out) {
  for (int i = 0; i < 4; ++i) {
    for (int t = 0; t < 32; ++t) {
      if (!trans) {
        const int base = addr[8 * i + t / 4] + 2 * (t % 4);
        out[t][i] = {smem[base], smem[base + 1]};
      } else {
        const int r0 = 2 * (t % 4);
        out[t][i] = {smem[addr[8 * i + r0] + t / 4], smem[addr[8 * i + r0 + 1] + t / 4]};
      }
    }
  }
}

// mma.m16n8k16.row.col (f16/bf16 in, f32 accumulate), g = lane / 4, q = lane % 4:
// A: a0,a1 (row g, cols 2q, 2q+1), a2,a3 (row g+8), a4,a5 (row g, cols 2q+8, 2q+9), a6,a7
// (row g+8, cols 2q+8, 2q+9), two per register; B: b0,b1 (rows 2q, 2q+1, col g), b2,b3 (rows
// 2q+8, 2q+9); C: c0,c1 (row g, cols 2q, 2q+1), c2,c3 (row g+8).
void mma(float (&c)[32][4], const Pair (&a)[32][4], const Pair (&b)[32][2]) {
  float A[16][16] = {}, B[16][8] = {};
  for (int t = 0; t < 32; ++t) {
    const int g = t / 4, q = t % 4;
    A[g][2 * q] = a[t][0].lo;
    A[g][2 * q + 1] = a[t][0].hi;
    A[g + 8][2 * q] = a[t][1].lo;
    A[g + 8][2 * q + 1] = a[t][1].hi;
    A[g][2 * q + 8] = a[t][2].lo;
    A[g][2 * q + 9] = a[t][2].hi;
    A[g + 8][2 * q + 8] = a[t][3].lo;
    A[g + 8][2 * q + 9] = a[t][3].hi;
    B[2 * q][g] = b[t][0].lo;
    B[2 * q + 1][g] = b[t][0].hi;
    B[2 * q + 8][g] = b[t][1].lo;
    B[2 * q + 9][g] = b[t][1].hi;
  }
  for (int t = 0; t < 32; ++t) {
    const int g = t / 4, q = t % 4;
    for (int e = 0; e < 4; ++e) {
      const int row = g + (e >> 1) * 8, col = 2 * q + (e & 1);
      float s = 0;
      for (int k = 0; k < 16; ++k) s += A[row][k] * B[k][col];
      c[t][e] += s;
    }
  }
}

// 8 lanes x 16 bytes (one ldmatrix phase) or 32 lanes x 4 bytes on distinct banks.
bool conflict_free(const std::vector<int>& elem_offsets, int bytes_each) {
  std::set<int> banks;
  for (int off : elem_offsets) {
    for (int w = 0; w < bytes_each / 4; ++w) banks.insert((off * 2 / 4 + w) % 32);
  }
  return static_cast<int>(banks.size()) == static_cast<int>(elem_offsets.size()) * bytes_each / 4;
}

template <int D>
int check_head_size() {
  constexpr int ld = Tile<D>::kLd;
  int failures = 0;
  std::vector<float> q(64 * ld, -1000.f), k(64 * ld, -1000.f), v(64 * ld, -1000.f);
  for (int r = 0; r < 64; ++r) {
    for (int d = 0; d < D; ++d) {
      q[r * ld + d] = static_cast<float>((r * 7 + d * 3) % 5 - 2);
      k[r * ld + d] = static_cast<float>((r * 5 + d * 11) % 7 - 3);
      v[r * ld + d] = static_cast<float>((r * 3 + d * 13) % 9 - 4);
    }
  }
  for (int w = 0; w < 4; ++w) {
    // Q fragments, as the kernel loads them.
    Pair qf[Tile<D>::kKSteps][32][4];
    for (int ks = 0; ks < Tile<D>::kKSteps; ++ks) {
      for (int r = 0; r < 4; ++r) {
        std::vector<int> offs;
        for (int lane = 0; lane < 32; ++lane) {
          const int off = q_fragment_offset(lane, w, ks, r, ld);
          qf[ks][lane][r] = {q[off], q[off + 1]};
          offs.push_back(off);
        }
        if (!conflict_free(offs, 4)) {
          std::printf("D=%d: Q fragment load (ks %d, reg %d) has bank conflicts\n", D, ks, r);
          ++failures;
        }
      }
    }
    // S = Q K^T.
    float s[8][32][4] = {};
    for (int ks = 0; ks < Tile<D>::kKSteps; ++ks) {
      for (int np = 0; np < 4; ++np) {
        int addr[32];
        for (int lane = 0; lane < 32; ++lane) addr[lane] = k_ldmatrix_offset(lane, np, ks, ld);
        for (int ph = 0; ph < 4; ++ph) {
          if (!conflict_free(std::vector<int>(addr + 8 * ph, addr + 8 * ph + 8), 16)) {
            std::printf("D=%d: K ldmatrix phase %d has bank conflicts\n", D, ph);
            ++failures;
          }
        }
        Regs4 r;
        ldmatrix(k, addr, false, r);
        Pair b0[32][2], b1[32][2];
        for (int lane = 0; lane < 32; ++lane) {
          b0[lane][0] = r[lane][0];
          b0[lane][1] = r[lane][1];
          b1[lane][0] = r[lane][2];
          b1[lane][1] = r[lane][3];
        }
        mma(s[2 * np], qf[ks], b0);
        mma(s[2 * np + 1], qf[ks], b1);
      }
    }
    std::vector<float> S(16 * 64);
    for (int i = 0; i < 16; ++i) {
      for (int j = 0; j < 64; ++j) {
        float acc = 0;
        for (int d = 0; d < D; ++d) acc += q[(w * 16 + i) * ld + d] * k[j * ld + d];
        S[i * 64 + j] = acc;
      }
    }
    for (int n = 0; n < 8; ++n) {
      for (int lane = 0; lane < 32; ++lane) {
        for (int e = 0; e < 4; ++e) {
          const float want = S[acc_row(lane, e) * 64 + n * 8 + acc_col(lane, e)];
          if (s[n][lane][e] != want && failures < 20) {
            std::printf("D=%d warp %d: S tile %d lane %d elem %d = %g, want %g\n", D, w, n, lane, e,
                        s[n][lane][e], want);
            ++failures;
          }
        }
      }
    }
    // O = P V with P = S (the accumulators repacked as A fragments).
    float o[Tile<D>::kDimTiles][32][4] = {};
    for (int kk = 0; kk < 4; ++kk) {
      Pair pa[32][4];
      for (int lane = 0; lane < 32; ++lane) {
        for (int r = 0; r < 4; ++r) {
          pa[lane][r] = {s[p_tile(kk, r)][lane][p_elem(r)], s[p_tile(kk, r)][lane][p_elem(r) + 1]};
        }
      }
      for (int dp = 0; dp < Tile<D>::kDimTiles / 2; ++dp) {
        int addr[32];
        for (int lane = 0; lane < 32; ++lane) addr[lane] = v_ldmatrix_offset(lane, kk, dp, ld);
        for (int ph = 0; ph < 4; ++ph) {
          if (!conflict_free(std::vector<int>(addr + 8 * ph, addr + 8 * ph + 8), 16)) {
            std::printf("D=%d: V ldmatrix phase %d has bank conflicts\n", D, ph);
            ++failures;
          }
        }
        Regs4 r;
        ldmatrix(v, addr, true, r);
        Pair b0[32][2], b1[32][2];
        for (int lane = 0; lane < 32; ++lane) {
          b0[lane][0] = r[lane][0];
          b0[lane][1] = r[lane][1];
          b1[lane][0] = r[lane][2];
          b1[lane][1] = r[lane][3];
        }
        mma(o[2 * dp], pa, b0);
        mma(o[2 * dp + 1], pa, b1);
      }
    }
    for (int t = 0; t < Tile<D>::kDimTiles; ++t) {
      for (int lane = 0; lane < 32; ++lane) {
        for (int e = 0; e < 4; ++e) {
          const int i = acc_row(lane, e), col = t * 8 + acc_col(lane, e);
          float want = 0;
          for (int j = 0; j < 64; ++j) want += S[i * 64 + j] * v[j * ld + col];
          if (o[t][lane][e] != want && failures < 20) {
            std::printf("D=%d warp %d: O tile %d lane %d elem %d = %g, want %g\n", D, w, t, lane, e,
                        o[t][lane][e], want);
            ++failures;
          }
        }
      }
    }
  }
  return failures;
}

// The kernel's block loop for one (batch, head) slice, transcribed with lanes as arrays (float
// throughout, P not rounded): zero-filled tails, causal tile limit, masking, online softmax with
// quad reductions, rescaling, the final division; against a direct softmax in double with the
// CPU reference's rules (a row whose every key is masked gives zeros).
int check_block_loop(int sq, int skv, bool causal, bool with_mask, uint32_t seed) {
  constexpr int D = 64, ld = Tile<D>::kLd;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> small(-3, 3);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> Q(sq * D), K(skv * D), V(skv * D), M(with_mask ? sq * skv : 0);
  for (float& x : Q) x = small(rng) * 0.25f;
  for (float& x : K) x = small(rng) * 0.25f;
  for (float& x : V) x = static_cast<float>(small(rng));
  for (int i = 0; i < static_cast<int>(M.size()); ++i) {
    M[i] = u(rng) < 0.3f || i < skv ? -INFINITY : u(rng) * 4.f - 2.f;  // row 0 fully masked
  }
  const float scale = 0.125f;
  // Reference.
  std::vector<double> want(sq * D, 0.0);
  for (int i = 0; i < sq; ++i) {
    std::vector<double> sc(skv);
    bool all_masked = true;
    double mx = -INFINITY;
    for (int j = 0; j < skv; ++j) {
      double dot = 0;
      for (int d = 0; d < D; ++d) dot += double(Q[i * D + d]) * K[j * D + d];
      double bias = with_mask ? M[i * skv + j] : 0.0;
      if (causal && j > i) bias += -INFINITY;
      if (!(bias == -INFINITY)) all_masked = false;
      sc[j] = dot * scale + bias;
      mx = std::max(mx, sc[j]);
    }
    if (all_masked) continue;
    double sum = 0;
    for (int j = 0; j < skv; ++j) sum += std::exp(sc[j] - mx);
    for (int j = 0; j < skv; ++j) {
      const double p = std::exp(sc[j] - mx) / sum;
      for (int d = 0; d < D; ++d) want[i * D + d] += p * V[j * D + d];
    }
  }
  // Emulation, block by block and warp by warp.
  std::vector<float> got(sq * D, NAN);
  auto fill = [&](std::vector<float>& tile, const std::vector<float>& src, int row0, int rows) {
    tile.assign(64 * ld, -7777.f);  // padding never read
    for (int r = 0; r < 64; ++r)
      for (int d = 0; d < D; ++d)
        tile[r * ld + d] = row0 + r < rows ? src[(row0 + r) * D + d] : 0.f;
  };
  std::vector<float> qt, kt, vt;
  for (int m0 = 0; m0 < sq; m0 += kBlockM) {
    fill(qt, Q, m0, sq);
    int kv_end = skv;
    if (causal) kv_end = std::min(kv_end, std::min(m0 + kBlockM, sq));
    const int n_tiles = (kv_end + kBlockN - 1) / kBlockN;
    for (int w = 0; w < 4; ++w) {
      Pair qf[Tile<D>::kKSteps][32][4];
      for (int ks = 0; ks < Tile<D>::kKSteps; ++ks)
        for (int r = 0; r < 4; ++r)
          for (int lane = 0; lane < 32; ++lane) {
            const int off = q_fragment_offset(lane, w, ks, r, ld);
            qf[ks][lane][r] = {qt[off], qt[off + 1]};
          }
      float o[Tile<D>::kDimTiles][32][4] = {};
      float m_run[32][2], l_run[32][2] = {};
      for (auto& m : m_run) m[0] = m[1] = -INFINITY;
      for (int tile = 0; tile < n_tiles; ++tile) {
        fill(kt, K, tile * kBlockN, skv);
        fill(vt, V, tile * kBlockN, skv);
        float s[8][32][4] = {};
        for (int ks = 0; ks < Tile<D>::kKSteps; ++ks)
          for (int np = 0; np < 4; ++np) {
            int addr[32];
            for (int lane = 0; lane < 32; ++lane) addr[lane] = k_ldmatrix_offset(lane, np, ks, ld);
            Regs4 r;
            ldmatrix(kt, addr, false, r);
            Pair b0[32][2], b1[32][2];
            for (int lane = 0; lane < 32; ++lane) {
              b0[lane][0] = r[lane][0], b0[lane][1] = r[lane][1];
              b1[lane][0] = r[lane][2], b1[lane][1] = r[lane][3];
            }
            mma(s[2 * np], qf[ks], b0);
            mma(s[2 * np + 1], qf[ks], b1);
          }
        float mx[32][2], base[32][2], alpha[32][2];
        for (int lane = 0; lane < 32; ++lane) {
          mx[lane][0] = m_run[lane][0];
          mx[lane][1] = m_run[lane][1];
          for (int n = 0; n < 8; ++n)
            for (int e = 0; e < 4; ++e) {
              const int i = e >> 1;
              const int key = tile * kBlockN + n * 8 + acc_col(lane, e);
              const int row = m0 + w * 16 + acc_row(lane, e);
              float x = -INFINITY;
              if (key < skv) {
                float bias = 0.f;
                if (with_mask) bias += M[std::min(row, sq - 1) * skv + key];
                if (causal && key > row) bias += -INFINITY;
                x = (s[n][lane][e] * scale + bias) * kLog2e;
              }
              s[n][lane][e] = x;
              mx[lane][i] = std::fmax(mx[lane][i], x);
            }
        }
        for (int i = 0; i < 2; ++i) {
          float red[32];
          for (int lane = 0; lane < 32; ++lane) red[lane] = std::fmax(mx[lane][i], mx[lane ^ 1][i]);
          for (int lane = 0; lane < 32; ++lane) mx[lane][i] = std::fmax(red[lane], red[lane ^ 2]);
        }
        for (int lane = 0; lane < 32; ++lane)
          for (int i = 0; i < 2; ++i) {
            base[lane][i] = mx[lane][i] == -INFINITY ? 0.f : mx[lane][i];
            alpha[lane][i] = std::exp2(m_run[lane][i] - base[lane][i]);
            m_run[lane][i] = mx[lane][i];
            float sum = 0;
            for (int n = 0; n < 8; ++n)
              for (int e = 2 * i; e < 2 * i + 2; ++e) {
                s[n][lane][e] = std::exp2(s[n][lane][e] - base[lane][i]);
                sum += s[n][lane][e];
              }
            l_run[lane][i] = l_run[lane][i] * alpha[lane][i] + sum;
            for (int t = 0; t < Tile<D>::kDimTiles; ++t) {
              o[t][lane][2 * i] *= alpha[lane][i];
              o[t][lane][2 * i + 1] *= alpha[lane][i];
            }
          }
        for (int kk = 0; kk < 4; ++kk) {
          Pair pa[32][4];
          for (int lane = 0; lane < 32; ++lane)
            for (int r = 0; r < 4; ++r)
              pa[lane][r] = {s[p_tile(kk, r)][lane][p_elem(r)],
                             s[p_tile(kk, r)][lane][p_elem(r) + 1]};
          for (int dp = 0; dp < Tile<D>::kDimTiles / 2; ++dp) {
            int addr[32];
            for (int lane = 0; lane < 32; ++lane) addr[lane] = v_ldmatrix_offset(lane, kk, dp, ld);
            Regs4 r;
            ldmatrix(vt, addr, true, r);
            Pair b0[32][2], b1[32][2];
            for (int lane = 0; lane < 32; ++lane) {
              b0[lane][0] = r[lane][0], b0[lane][1] = r[lane][1];
              b1[lane][0] = r[lane][2], b1[lane][1] = r[lane][3];
            }
            mma(o[2 * dp], pa, b0);
            mma(o[2 * dp + 1], pa, b1);
          }
        }
      }
      for (int i = 0; i < 2; ++i) {
        float l[32];
        for (int lane = 0; lane < 32; ++lane) l[lane] = l_run[lane][i] + l_run[lane ^ 1][i];
        float l2[32];
        for (int lane = 0; lane < 32; ++lane) l2[lane] = l[lane] + l[lane ^ 2];
        for (int lane = 0; lane < 32; ++lane) {
          const int row = m0 + w * 16 + acc_row(lane, 2 * i);
          if (row >= sq) continue;
          for (int t = 0; t < Tile<D>::kDimTiles; ++t)
            for (int e = 0; e < 2; ++e)
              got[row * D + t * 8 + acc_col(lane, 2 * i) + e] =
                  l2[lane] == 0.f ? 0.f : o[t][lane][2 * i + e] / l2[lane];
        }
      }
    }
  }
  double err = 0;
  for (int i = 0; i < sq * D; ++i) {
    const double e = std::isnan(got[i]) ? INFINITY : std::fabs(got[i] - want[i]);
    err = std::max(err, e);
  }
  if (err > 1e-4) {
    std::printf("block loop sq=%d skv=%d causal=%d mask=%d: max error %g\n", sq, skv, causal,
                with_mask, err);
    return 1;
  }
  return 0;
}

}  // namespace

int main() {
  int failures = check_head_size<32>() + check_head_size<64>() + check_head_size<80>() +
                 check_head_size<96>() + check_head_size<128>();
  const int seqs[] = {1, 7, 64, 65, 130, 197};
  uint32_t seed = 1;
  for (int sq : seqs)
    for (int skv : seqs)
      for (int causal = 0; causal < 2; ++causal)
        for (int mask = 0; mask < 2; ++mask)
          failures += check_block_loop(sq, skv, causal, mask, seed++);
  std::printf("flash attention fragment maps and block loop: %s (%d failures)\n",
              failures ? "FAIL" : "ok", failures);
  return failures ? 1 : 0;
}
