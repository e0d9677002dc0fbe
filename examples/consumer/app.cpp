// app.cpp — the C++17 twin of app.c: the same model (quadrants.nn, compiled as C by nnc)
// trained on synthetic points and used to classify new ones, from C++.
//
// The generated header has extern "C" guards, so C++ includes it as it is; the generated
// quadrants.c must be compiled as C (nnc_add_model does that in a C++ project).  The
// model is held by a std::unique_ptr whose deleter is quadrants_free.  Exits 1 when
// training did not lower the held-out loss or accuracy is under 90%.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>
#include "quadrants.h"

namespace {

struct Points {
    std::vector<float> x;     // [n, 2]
    std::vector<int32_t> y;   // [n]: 1 in the 1st and 3rd quadrants, 0 in the 2nd and 4th
};

Points make_points(std::mt19937_64 &rng, int n) {
    std::uniform_real_distribution<float> coordinate(-1.0f, 1.0f);
    Points p{std::vector<float>(2 * static_cast<size_t>(n)), std::vector<int32_t>(n)};
    for (int i = 0; i < n; i++) {
        p.x[2 * i] = coordinate(rng);
        p.x[2 * i + 1] = coordinate(rng);
        p.y[i] = (p.x[2 * i] > 0) == (p.x[2 * i + 1] > 0);
    }
    return p;
}

using Model = std::unique_ptr<quadrants, decltype(&quadrants_free)>;

// the mean loss over a set, in calls of at most QUADRANTS_BATCH examples
float mean_loss(quadrants *m, const Points &p) {
    const int n = static_cast<int>(p.y.size());
    double sum = 0;
    for (int i = 0; i < n; i += QUADRANTS_BATCH) {
        const int k = std::min(n - i, QUADRANTS_BATCH);
        sum += static_cast<double>(quadrants_loss_grad(m, k, &p.x[2 * i], &p.y[i])) * k;
    }
    return static_cast<float>(sum / n);
}

}  // namespace

int main() {
    constexpr int steps = 600;
    std::mt19937_64 rng(42);
    const Points train = make_points(rng, 2048), test = make_points(rng, 512);

    Model m(quadrants_new(), quadrants_free);
    if (!m) {
        std::fprintf(stderr, "app_cpp: out of memory\n");
        return 1;
    }
    quadrants_init(m.get(), 1);
    const float before = mean_loss(m.get(), test);
    const int n = static_cast<int>(train.y.size());
    for (int step = 0; step < steps; step++) {   // batches taken in turn from the set
        const int i = step * QUADRANTS_BATCH % n;
        quadrants_train_step(m.get(), QUADRANTS_BATCH, &train.x[2 * i], &train.y[i]);
    }
    const float after = mean_loss(m.get(), test);

    std::vector<float> probs(test.x.size());   // [n, 2]
    quadrants_predict(m.get(), static_cast<int>(test.y.size()), test.x.data(), probs.data());
    int right = 0;
    for (size_t i = 0; i < test.y.size(); i++)
        right += (probs[2 * i + 1] > probs[2 * i]) == (test.y[i] == 1);
    const double accuracy = static_cast<double>(right) / static_cast<double>(test.y.size());

    std::printf("app_cpp: held-out loss %.4f -> %.4f after %d steps, accuracy %.3f\n", before,
                after, steps, accuracy);
    if (!(after < before) || accuracy < 0.9) {
        std::fprintf(stderr, "app_cpp: the model did not learn\n");
        return 1;
    }
    return 0;
}
