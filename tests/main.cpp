#define BOOST_TEST_MODULE courier engine
#include <boost/test/unit_test.hpp>
