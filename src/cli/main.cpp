#include <cstdio>

int main() {
  std::puts("turbine " TURBINE_VERSION);
  return 0;
}
